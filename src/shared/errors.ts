/**
 * The closed set of error codes cardhold returns. Each code has one HTTP status and title, so clients
 * can branch on `code` and documentation is generated from this table (docs/errors.md).
 */
export const errorCatalog = {
  request_invalid: { status: 400, title: 'The request does not match the schema' },
  body_not_json: { status: 400, title: 'The request body is not valid JSON' },
  body_too_large: { status: 413, title: 'The request body is too large' },
  media_type_unsupported: { status: 415, title: 'The request content type is not supported' },
  card_number_invalid: { status: 422, title: 'The card number is not a valid card number' },
  card_number_luhn_failed: { status: 422, title: 'The card number fails its check digit' },
  card_number_length_invalid: { status: 422, title: 'The card number has the wrong length for its brand' },
  card_expiry_invalid: { status: 422, title: 'The expiry month or year is not valid' },
  card_expired: { status: 422, title: 'The card has expired' },
  holder_name_invalid: { status: 422, title: 'The card holder name is not valid' },
  cvv_invalid: { status: 422, title: 'The card verification code is not valid' },
  token_expiry_invalid: { status: 422, title: 'The token expiry must be in the future and within limits' },
  cvv_slot_options_invalid: { status: 422, title: 'The CVV slot lifetime or use count is out of range' },
  batch_too_large: { status: 422, title: 'The batch has more items than allowed' },
  unauthenticated: { status: 401, title: 'A valid credential is required' },
  forbidden: { status: 403, title: 'The credential does not permit this action' },
  mfa_required: { status: 401, title: 'Multi-factor authentication is required for this action' },
  token_not_found: { status: 404, title: 'No such token' },
  cvv_slot_not_found: { status: 404, title: 'No such CVV slot, or it has expired or been used up' },
  merchant_not_found: { status: 404, title: 'No such merchant' },
  api_key_not_found: { status: 404, title: 'No such API key' },
  route_not_found: { status: 404, title: 'No such route' },
  invalid_credentials: { status: 401, title: 'The username, password or code is not valid' },
  mfa_challenge_invalid: {
    status: 401,
    title: 'The multi-factor challenge is unknown, used or expired; log in again',
  },
  session_invalid: { status: 401, title: 'The session is invalid, expired, idle for too long or ended' },
  operator_not_found: { status: 404, title: 'No such operator' },
  operator_exists: { status: 409, title: 'An operator with this username already exists' },
  operator_bootstrap_refused: {
    status: 409,
    title: 'Operators already exist; bootstrap only creates the first security administrator',
  },
  username_invalid: {
    status: 422,
    title: 'A username is 3 to 64 characters: a letter, then letters, digits, dots, hyphens or underscores',
  },
  operator_roles_invalid: {
    status: 422,
    title: 'The roles are not operator roles, or a merchant-scoped operator holds security-admin',
  },
  password_length_invalid: { status: 422, title: 'A password must be between 12 and 256 characters long' },
  password_too_weak: { status: 422, title: 'A password must contain both letters and digits' },
  password_matches_username: { status: 422, title: 'A password must not be the username' },
  password_reused: { status: 422, title: 'A password must differ from the last four passwords' },
  token_integrity_failed: {
    status: 500,
    title: 'Stored card data failed its integrity check and was not served',
  },
  key_provider_unavailable: {
    status: 503,
    title: 'The key provider is unavailable; card data is not served',
  },
  storage_unavailable: { status: 503, title: 'The database is unavailable' },
  audit_unavailable: {
    status: 503,
    title: 'The audit trail cannot be written; the operation was not performed',
  },
  audit_range_invalid: { status: 422, title: 'The audit time range is not valid' },
  volatile_store_unavailable: { status: 503, title: 'The volatile store is unavailable' },
  rate_limited: { status: 429, title: 'Too many requests; retry after the time in retry-after' },
  not_ready: { status: 503, title: 'The service is not ready' },
  // Payments (issue 5): the forward proxy, payment intents, refunds, idempotency, connectors.
  forward_target_not_allowed: {
    status: 422,
    title: 'The forward target is not on the vault’s allow-list of processor URLs',
  },
  forward_template_invalid: { status: 422, title: 'The forwarded request template is not valid' },
  forward_response_too_large: { status: 502, title: 'The processor’s answer was too large' },
  payment_not_found: { status: 404, title: 'No such payment' },
  refund_not_found: { status: 404, title: 'No such refund' },
  payment_state_invalid: {
    status: 409,
    title: 'The payment’s status does not allow this action',
  },
  payment_in_progress: {
    status: 409,
    title: 'Another operation on this payment is in progress; retry shortly',
  },
  amount_invalid: { status: 422, title: 'The amount is not valid for this currency or operation' },
  currency_invalid: { status: 422, title: 'The currency is not a supported ISO 4217 code' },
  capture_amount_exceeded: {
    status: 422,
    title: 'The capture amount is more than the amount still capturable',
  },
  refund_amount_exceeded: {
    status: 422,
    title: 'The refund amount is more than the captured amount not yet refunded',
  },
  payment_method_invalid: {
    status: 422,
    title: 'The payment method is not a token of this merchant',
  },
  card_declined: { status: 402, title: 'The card was declined' },
  processor_unavailable: {
    status: 503,
    title: 'No processor could be reached; nothing was charged and the payment can be confirmed again',
  },
  processor_refused: {
    status: 502,
    title:
      'The processor turned the request down (not the card); nothing was charged, and sending it again will not change that',
  },
  idempotency_key_reused: {
    status: 422,
    title: 'This idempotency key was used with different parameters',
  },
  vault_unavailable: {
    status: 503,
    title: 'The vault cannot be reached or cannot serve card data now; nothing was charged',
  },
  vault_answer_lost: {
    status: 503,
    title:
      'The vault took the request but its answer was lost; the outcome is unknown until the processor is asked',
  },
  idempotency_key_in_use: {
    status: 409,
    title: 'A request with this idempotency key is still being processed',
  },
  internal_error: { status: 500, title: 'Internal error' },
  // The test acquirer (src/acquirers/): its ledger's refusals and its triggered failures.
  authorization_not_found: { status: 404, title: 'No such authorization' },
  invalid_state: { status: 409, title: 'The authorization is not in a state that allows this' },
  amount_exceeds_authorized: {
    status: 422,
    title: 'The captures would exceed the authorized amount',
  },
  amount_exceeds_captured: { status: 422, title: 'The refunds would exceed the captured amount' },
  acquirer_unavailable: { status: 503, title: 'The acquirer is unavailable' },
  acquirer_timeout: { status: 504, title: 'The acquirer did not answer in time' },
  key_provider_sealed: {
    status: 503,
    title: 'The key provider is sealed until enough custodians submit their shares; card data is not served',
  },
  key_share_invalid: {
    status: 422,
    title: 'The key share is malformed, corrupted or belongs to another vault',
  },
  key_share_duplicate: { status: 409, title: 'A share with this index was already submitted' },
  key_shares_mismatch: {
    status: 422,
    title: 'The submitted shares do not reconstruct the master key; all were discarded, start again',
  },
  key_provider_not_sealable: { status: 409, title: 'The configured key provider is not a sealed provider' },
  key_environment_mismatch: {
    status: 503,
    title: 'A key belongs to another environment; production and test keys never mix',
  },
  // Webhooks (issue 5).
  webhook_endpoint_not_found: { status: 404, title: 'No such webhook endpoint' },
  webhook_delivery_not_found: { status: 404, title: 'No such webhook delivery' },
  event_not_found: { status: 404, title: 'No such event' },
  webhook_url_invalid: {
    status: 422,
    title: 'The webhook URL is not allowed (https; http only to loopback in development mode)',
  },
  webhook_payload_rejected: {
    status: 500,
    title: 'An event payload looked like it held a card number and was not written',
  },
  // Key lifecycle and incident response (issue 6).
  merchant_frozen: { status: 423, title: 'The merchant is frozen; its card data is not served' },
  key_version_not_found: { status: 404, title: 'No such key version' },
  key_job_superseded: {
    status: 409,
    title: 'The key job moved on to a newer version while this run was under way; run it again',
  },
  key_version_in_use: {
    status: 409,
    title: 'The key version is active or still protects data; rotate and rewrap before retiring it',
  },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalog;

export const isErrorCode = (value: string): value is ErrorCode => Object.hasOwn(errorCatalog, value);

export interface FieldError {
  /** JSON-pointer-like dotted path of the field at fault, e.g. `cards[3].pan`. */
  field: string;
  code: ErrorCode | string;
  message: string;
}

export interface CardholdErrorOptions {
  field?: string;
  detail?: string;
  errors?: FieldError[];
  cause?: unknown;
  /** RFC 9457 extension members: facts a client branches on (a decline code, the payment's id). */
  extensions?: Record<string, string | number | null>;
}

/**
 * The one error type that crosses module boundaries. Messages and details are written by us, never
 * built from input values, so they are safe to return and log.
 */
export class CardholdError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly field: string | undefined;
  readonly detail: string;
  readonly errors: FieldError[] | undefined;
  readonly extensions: Record<string, string | number | null> | undefined;

  constructor(code: ErrorCode, options: CardholdErrorOptions = {}) {
    const detail = options.detail ?? errorCatalog[code].title;
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CardholdError';
    this.code = code;
    this.status = errorCatalog[code].status;
    this.field = options.field;
    this.detail = detail;
    this.errors = options.errors;
    this.extensions = options.extensions;
  }
}

export function isCardholdError(value: unknown): value is CardholdError {
  return value instanceof CardholdError;
}
