import { parse } from 'qs';
import type { AppInstance } from './create-server.ts';

/** Bodies that arrived form-encoded: their values are strings, so validation coerces them. */
export const formBodies = new WeakSet<object>();

/**
 * Accepts `application/x-www-form-urlencoded` bodies with Stripe's bracket notation
 * (`metadata[order]=7`, `payment_method_options[card][cvc_token]=…`), as Stripe's SDKs send them.
 * Depth, array and parameter limits keep a hostile body small; prototype keys are never created.
 */
export function acceptFormBodies(app: AppInstance): void {
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => {
      try {
        const parsed = parse(body as string, {
          depth: 5,
          arrayLimit: 100,
          parameterLimit: 1000,
          allowPrototypes: false,
          plainObjects: false,
        });
        formBodies.add(parsed);
        done(null, parsed);
      } catch (error) {
        done(error as Error, undefined);
      }
    },
  );
}
