import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, `Cardhold-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
 * During a secret rotation the header carries one `v1` per valid secret, and a receiver accepts the
 * request if any of them matches its secret. This module depends on node:crypto only, so merchants can
 * copy it (docs/webhooks.md).
 */

export const SIGNATURE_HEADER = 'Cardhold-Signature';
export const DEFAULT_TOLERANCE_SECONDS = 300;

export type WebhookSignatureFailure =
  | 'malformed_header'
  | 'timestamp_outside_tolerance'
  | 'no_matching_signature';

/** Why a webhook was not accepted; `reason` is for code, the message for people. */
export class WebhookSignatureError extends Error {
  readonly reason: WebhookSignatureFailure;
  constructor(reason: WebhookSignatureFailure, message: string) {
    super(message);
    this.name = 'WebhookSignatureError';
    this.reason = reason;
  }
}

const hmac = (secret: string, timestamp: number, payload: string | Buffer) =>
  createHmac('sha256', secret).update(`${timestamp}.`).update(payload).digest();

/** The header value for `payload` at `timestamp` (unix seconds), with one `v1` per secret. */
export function signWebhook(payload: string, secrets: string[], timestamp: number): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0)
    throw new TypeError('timestamp must be unix seconds');
  if (secrets.length === 0) throw new TypeError('at least one secret is needed');
  return [
    `t=${timestamp}`,
    ...secrets.map((secret) => `v1=${hmac(secret, timestamp, payload).toString('hex')}`),
  ].join(',');
}

const TIMESTAMP = /^[0-9]{1,12}$/;
const V1 = /^[0-9a-f]{64}$/;

function parseHeader(header: string): { timestamp: number; signatures: Buffer[] } {
  const malformed = (what: string) =>
    new WebhookSignatureError('malformed_header', `Malformed signature header: ${what}`);
  if (typeof header !== 'string' || header.length === 0 || header.length > 4096)
    throw malformed('empty or too long');
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const item of header.split(',')) {
    const at = item.indexOf('=');
    if (at <= 0) throw malformed('every item is key=value');
    const key = item.slice(0, at).trim();
    const value = item.slice(at + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !TIMESTAMP.test(value)) throw malformed('one t, in unix seconds');
      timestamp = Number(value);
    } else if (key === 'v1') {
      if (!V1.test(value)) throw malformed('v1 is 64 lowercase hex digits');
      signatures.push(Buffer.from(value, 'hex'));
    }
    // Other schemes are ignored, so that a future scheme can be added beside v1.
  }
  if (timestamp === undefined) throw malformed('no timestamp');
  if (signatures.length === 0) throw malformed('no v1 signature');
  return { timestamp, signatures };
}

/**
 * Throws a WebhookSignatureError unless `header` carries a `v1` that is the HMAC of exactly these
 * `payload` bytes under `secret`, with a timestamp within `toleranceSeconds` (default 300) of `now`
 * (unix seconds, default the clock). Pass the raw request body, before any JSON parsing. Every `v1` is
 * compared in constant time.
 */
export function verifyWebhookSignature(
  payload: string | Buffer,
  header: string,
  secret: string,
  options: { toleranceSeconds?: number; now?: number } = {},
): void {
  // Misuse is a programming error, not a bad signature: an empty secret (an unset environment variable)
  // would accept what anyone signs with an empty key, and a tolerance that is not a finite, non-negative
  // number would accept any timestamp.
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new TypeError('verifyWebhookSignature needs the endpoint’s signing secret (whsec_…)');
  }
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (!Number.isFinite(tolerance) || tolerance < 0) {
    throw new TypeError('toleranceSeconds must be a finite number of seconds, zero or more');
  }
  const { timestamp, signatures } = parseHeader(header);
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (!Number.isFinite(now)) throw new TypeError('now must be a finite number of unix seconds');
  if (Math.abs(now - timestamp) > tolerance) {
    throw new WebhookSignatureError(
      'timestamp_outside_tolerance',
      `The signature timestamp is more than ${tolerance} seconds from now`,
    );
  }
  const expected = hmac(secret, timestamp, payload);
  let matched = false;
  for (const signature of signatures) matched = timingSafeEqual(signature, expected) || matched;
  if (!matched) {
    throw new WebhookSignatureError('no_matching_signature', 'No signature matches the payload and secret');
  }
}
