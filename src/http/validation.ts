import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FieldError } from '../shared/errors.ts';
import { formBodies } from './form-body.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

// Bodies are validated strictly: no type coercion (a number is not a string), no silent removal of
// unknown fields, every error reported. Path and query parameters arrive as strings and are coerced.
const strict = addFormats(
  new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: true, strict: false }),
);
const coercing = addFormats(
  new Ajv({ coerceTypes: true, removeAdditional: false, useDefaults: true, allErrors: true, strict: false }),
);

export function compileValidator({
  schema,
  httpPart,
}: {
  schema: object;
  httpPart?: string;
}): ValidateFunction {
  if (httpPart !== 'body') return coercing.compile(schema);
  const json = strict.compile(schema);
  // Form-encoded bodies (src/http/form-body.ts) carry every value as a string: they are coerced like
  // query strings, and JSON bodies stay strict. The coercing validator is compiled on first use.
  let form: ValidateFunction | undefined;
  const validate = ((data: unknown) => {
    let use = json;
    if (typeof data === 'object' && data !== null && formBodies.has(data)) {
      form ??= coercing.compile(schema);
      use = form;
    }
    const ok = use(data);
    validate.errors = use.errors;
    return ok;
  }) as ValidateFunction;
  return validate;
}

/** Turns ajv errors into field errors whose messages describe the rule, never the rejected value. */
export function toFieldErrors(errors: ErrorObject[], context: string): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    let field = pointerToField(e.instancePath);
    let message: string;
    switch (e.keyword) {
      case 'required':
        field = join(field, String(e.params['missingProperty']));
        message = 'is required';
        break;
      case 'additionalProperties':
        field = join(field, nameOf(String(e.params['additionalProperty'])));
        message = 'is not a known field';
        break;
      case 'type':
        message = `must be of type ${String(e.params['type'])}`;
        break;
      case 'maxItems':
        message = `must have at most ${String(e.params['limit'])} items`;
        break;
      case 'minItems':
        message = `must have at least ${String(e.params['limit'])} items`;
        break;
      case 'maxLength':
        message = `must have at most ${String(e.params['limit'])} characters`;
        break;
      case 'minLength':
        message = `must have at least ${String(e.params['limit'])} characters`;
        break;
      case 'minimum':
      case 'maximum':
        message = `must be ${e.keyword === 'minimum' ? '>=' : '<='} ${String(e.params['limit'])}`;
        break;
      case 'pattern':
        message = 'has the wrong format';
        break;
      case 'format':
        message = `must be a valid ${String(e.params['format'])}`;
        break;
      case 'enum':
      case 'const':
        message = 'is not one of the allowed values';
        break;
      default:
        message = 'is not valid';
    }
    const name = field || context;
    const key = `${name}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ field: name, code: 'request_invalid', message });
  }
  return out;
}

/**
 * A property name as a field name, when it is a name: keys come from the caller (an unknown field, a
 * metadata key) and are echoed in the problem and its log line, so anything that could carry card data
 * (digits beyond a couple, separators, any length beyond a name's) becomes `*`.
 */
export function nameOf(key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$[\]-]{0,63}$/.test(key) && (key.match(/\d/g)?.length ?? 0) <= 2 ? key : '*';
}

/** `/cards/3/pan` → `cards[3].pan` */
function pointerToField(pointer: string): string {
  if (!pointer) return '';
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d{1,9}$/.test(part)) out += `[${part}]`;
    else out = join(out, nameOf(part));
  }
  return out;
}

function join(parent: string, child: string): string {
  return parent ? `${parent}.${child}` : child;
}
