import type { Problem } from '../http/problem.ts';

/** Stripe's codes where one says the same thing; otherwise the client sees cardhold's own code. */
const stripeCodes: Partial<Record<string, string>> = {
  payment_not_found: 'resource_missing',
  refund_not_found: 'resource_missing',
  payment_state_invalid: 'payment_intent_unexpected_state',
  payment_in_progress: 'lock_timeout',
  capture_amount_exceeded: 'amount_too_large',
  refund_amount_exceeded: 'amount_too_large',
  amount_invalid: 'parameter_invalid_integer',
  currency_invalid: 'parameter_invalid_empty',
  payment_method_invalid: 'resource_missing',
  card_declined: 'card_declined',
  request_invalid: 'parameter_invalid',
  rate_limited: 'rate_limit',
};

/** A field path as Stripe names parameters: `payment_method_options.card.cvc_token` → `payment_method_options[card][cvc_token]`. */
function stripeParam(field: string): string {
  const [first, ...rest] = field.split('.');
  return `${first}${rest.map((part) => part.replace(/^([^[]*)/, '[$1]')).join('')}`;
}

/**
 * The Stripe-compatible face of a problem, for the payment routes: an `error` member shaped like
 * Stripe's error object, and Stripe's status conventions (a request that cannot be carried out is 400,
 * which Stripe's SDKs turn into their invalid-request or idempotency errors; a decline is 402). The
 * problem's own `code` stays cardhold's stable code.
 */
export function stripeErrorExtension(problem: Problem): Record<string, unknown> {
  const idempotency = problem.code === 'idempotency_key_reused' || problem.code === 'idempotency_key_in_use';
  let status = problem.status;
  if (status === 422 || (status === 409 && !idempotency) || problem.code === 'idempotency_key_reused')
    status = 400;
  let type: string;
  if (idempotency) type = 'idempotency_error';
  else if (status === 402) type = 'card_error';
  else if (status === 429) type = 'rate_limit_error';
  else if (status === 401) type = 'authentication_error';
  else if (status >= 500) type = 'api_error';
  else type = 'invalid_request_error';
  const decline = typeof problem['decline_code'] === 'string' ? problem['decline_code'] : undefined;
  const paymentIntent = typeof problem['payment_intent'] === 'string' ? problem['payment_intent'] : undefined;
  return {
    status,
    error: {
      type,
      code: stripeCodes[problem.code] ?? problem.code,
      message: problem.detail,
      ...(problem.field ? { param: stripeParam(problem.field) } : {}),
      ...(decline ? { decline_code: decline } : {}),
      ...(paymentIntent ? { payment_intent: { id: paymentIntent, object: 'payment_intent' } } : {}),
      request_log_url: null,
    },
  };
}
