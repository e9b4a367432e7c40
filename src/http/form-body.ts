import { parse } from 'qs';
import { CardholdError } from '../shared/errors.ts';
import type { AppInstance } from './create-server.ts';

/** Bodies that arrived form-encoded: their values are strings, so validation coerces them. */
export const formBodies = new WeakSet<object>();

/**
 * Accepts `application/x-www-form-urlencoded` bodies with Stripe's bracket notation
 * (`metadata[order]=7`, `payment_method_options[card][cvc_token]=…`), as Stripe's SDKs send them.
 * Depth, array and parameter limits keep a hostile body small, and a body beyond them is refused rather
 * than cut short (a `confirm=true` past the thousandth parameter must not be dropped silently). Objects
 * have no prototype, so `metadata[constructor]` is a key like any other; `__proto__` is refused.
 */
export function acceptFormBodies(app: AppInstance): void {
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => {
      const text = body as string;
      if (namesPrototype(text)) {
        done(refused('A parameter may not be named __proto__'), undefined);
        return;
      }
      let parsed: object;
      try {
        parsed = parse(text, {
          depth: 5,
          strictDepth: true,
          arrayLimit: 100,
          parameterLimit: 1000,
          throwOnLimitExceeded: true,
          allowPrototypes: true,
          plainObjects: true,
        });
      } catch {
        done(
          refused(
            'The form body nests deeper than 5 levels or has more than 1000 parameters or 100 list items',
          ),
          undefined,
        );
        return;
      }
      formBodies.add(parsed);
      done(null, parsed);
    },
  );
}

function refused(detail: string): CardholdError {
  return new CardholdError('request_invalid', { field: 'body', detail });
}

/** Whether any parameter name has a `__proto__` segment, however it is percent-encoded. */
function namesPrototype(text: string): boolean {
  if (!/proto/i.test(text)) return false;
  return text.split('&').some((pair) => {
    const name = pair.split('=', 1)[0] ?? '';
    let decoded: string;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      decoded = name;
    }
    return /(^|\[)__proto__(\]|$)/.test(decoded);
  });
}
