import { defineMappingTag, defineScalarTag, NOT_RESOLVED, Schema, seqTag, strTag } from 'js-yaml';

/**
 * The YAML 1.2 core schema exactly as the `yaml` package resolves it (its `core` tags, in its order, with
 * its regular expressions and number parsing), expressed as js-yaml tags, so that the fast parser builds
 * the same values the `yaml` Document path did. Plain-object mappings follow `yaml`'s `toJS`: a null key
 * becomes "", other scalar keys `String(key)`, a later duplicate wins; collection keys are refused (the
 * caller then falls back to the `yaml` path).
 */

const nullTest = /^(?:~|[Nn]ull|NULL)?$/;
const boolTest = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const intOctTest = /^0o[0-7]+$/;
const intTest = /^[-+]?[0-9]+$/;
const intHexTest = /^0x[0-9a-fA-F]+$/;
const floatNaNTest = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const floatExpTest = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const floatTest = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

/** Every first character a non-string plain scalar can have (plus the empty scalar, null). */
const resolvableFirst = new Set('~nNtTfF0123456789-+.');

/** The value `yaml` gives a plain scalar (null, boolean, number or the string itself). */
export function resolvePlainScalar(source: string): unknown {
  if (source !== '' && !resolvableFirst.has(source[0] as string)) return source;
  if (nullTest.test(source)) return null;
  if (boolTest.test(source)) return source[0] === 't' || source[0] === 'T';
  if (intOctTest.test(source)) return Number.parseInt(source.substring(2), 8);
  if (intTest.test(source)) return Number.parseInt(source, 10);
  if (intHexTest.test(source)) return Number.parseInt(source.substring(2), 16);
  if (floatNaNTest.test(source))
    return source.slice(-3).toLowerCase() === 'nan'
      ? Number.NaN
      : source[0] === '-'
        ? Number.NEGATIVE_INFINITY
        : Number.POSITIVE_INFINITY;
  if (floatExpTest.test(source) || floatTest.test(source)) return Number.parseFloat(source);
  return source;
}

/** One implicit tag resolving every non-string plain scalar; anything else stays a string. */
const plainScalarTag = defineScalarTag('tag:cardhold.dev,2026:yaml-core-plain', {
  implicit: true,
  implicitFirstChars: ['', ...resolvableFirst],
  resolve: (source) => {
    const value = resolvePlainScalar(source);
    return value === source ? NOT_RESOLVED : value;
  },
  identify: () => false,
});

/** `yaml`'s key for a plain object: "" for null, `String(key)` for other scalars. */
export function objectKey(key: unknown): string {
  return key === null ? '' : String(key);
}

const objectMapTag = defineMappingTag<Record<string, unknown>>('tag:yaml.org,2002:map', {
  create: () => ({}),
  addPair: (map, key, value) => {
    if (key !== null && typeof key === 'object') return 'collection keys take the yaml path';
    const name = objectKey(key);
    if (name in map)
      Object.defineProperty(map, name, { value, writable: true, enumerable: true, configurable: true });
    else map[name] = value;
    return '';
  },
  has: (map, key) => Object.hasOwn(map, objectKey(key)),
  keys: (map) => Object.keys(map),
  get: (map, key) => map[objectKey(key)],
  identify: () => false,
});

export const yamlCoreSchema = new Schema([strTag, seqTag, objectMapTag, plainScalarTag]);
