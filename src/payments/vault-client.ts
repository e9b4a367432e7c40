import { createSecureContext } from 'node:tls';
import { Agent, request } from 'undici';
import { MERCHANT_HEADER } from '../auth/authenticate.ts';
import type { TlsMaterial } from '../http/create-server.ts';
import { neverSent } from '../shared/connect-errors.ts';
import { CardholdError, isErrorCode } from '../shared/errors.ts';

export interface ForwardCall {
  token?: string;
  cvv_slot?: string;
  request: { method: string; url: string; headers?: Record<string, string>; body?: string };
  timeout_ms?: number;
}

export interface ForwardAnswer {
  outcome: 'answered' | 'timeout' | 'connection_failed' | 'connection_lost';
  sent: boolean;
  response: { status: number; headers: Record<string, string>; body: string } | null;
  cvv_slot: { id: string; destroyed: boolean } | null;
}

export interface TokenSummary {
  brand: string;
  last4: string;
}

/**
 * How long the api waits for the vault's answer: above the longest forward a caller may ask for (60 s)
 * plus the vault's own work. The reconciler leaves a `sent` attempt alone for longer than this, so it
 * never settles as "never heard of" a request whose answer is still on its way.
 */
export const VAULT_ANSWER_TIMEOUT_MS = 70_000;

/** Vault errors the api passes on as they are; anything else from the vault means it cannot serve. */
const PASSED_ON = new Set(['token_not_found', 'cvv_slot_not_found', 'forward_target_not_allowed']);

/**
 * The vault's server errors that it raises before a forward sends anything: the audit record, the key
 * provider, the database read of the token or the CVV store failed, or it is not ready. Any other server
 * error on a forward (an internal error, an unreadable answer) may have come after the processor acted.
 */
const REFUSED_BEFORE_SENDING = new Set([
  'audit_unavailable',
  'key_provider_unavailable',
  'key_provider_sealed',
  'storage_unavailable',
  'volatile_store_unavailable',
  'token_integrity_failed',
  'not_ready',
  'vault_unavailable',
]);

/**
 * The api's client of the vault, authenticated by its certificate (spiffe://cardhold/api) and acting
 * for one merchant at a time. The api learns a token's brand and last four, never its card number.
 */
export class VaultClient {
  readonly #base: () => string;
  #agent: Agent;

  /** `baseUrl` may be a function: in one process the vault's port is known only once it listens. */
  constructor(baseUrl: string | (() => string), tls: TlsMaterial) {
    this.#base = typeof baseUrl === 'string' ? () => baseUrl : baseUrl;
    this.#agent = newAgent(tls);
  }

  useTls(tls: TlsMaterial): void {
    const old = this.#agent;
    this.#agent = newAgent(tls);
    void old.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** Brand and last four of a token of this merchant, or undefined when it has none by that id. */
  async token(merchantId: string, tokenId: string): Promise<TokenSummary | undefined> {
    try {
      const view = await this.#call<TokenSummary>('GET', `/v1/tokens/${tokenId}`, merchantId);
      return { brand: view.brand, last4: view.last4 };
    } catch (error) {
      if (error instanceof CardholdError && error.code === 'token_not_found') return undefined;
      throw error;
    }
  }

  /**
   * Throws `vault_unavailable` when the vault provably sent nothing on (it was not reached, or refused
   * first), and `vault_answer_lost` when it may have: the api then records the outcome as unknown and the
   * reconciler asks the processor, rather than trying again and charging twice.
   */
  forward(merchantId: string, call: ForwardCall): Promise<ForwardAnswer> {
    return this.#call<ForwardAnswer>('POST', '/v1/forward', merchantId, call, true);
  }

  /** The authorization outcome became known later: the CVV goes now (PCI DSS 3.3.1.2). */
  async settleCvv(merchantId: string, slotId: string, outcome: 'approved' | 'declined'): Promise<void> {
    await this.#call('POST', `/v1/cvv-slots/${slotId}/settle`, merchantId, { outcome });
  }

  async #call<T>(
    method: string,
    path: string,
    merchantId: string,
    body?: unknown,
    forwards = false,
  ): Promise<T> {
    // A forward that failed after it may have reached the vault is ambiguous, not unavailable.
    const lost = (cause: unknown, detail: string) =>
      forwards
        ? new CardholdError('vault_answer_lost', { cause, detail })
        : new CardholdError('vault_unavailable', { cause, detail });
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(`${this.#base().replace(/\/$/, '')}${path}`, {
        method: method as 'GET',
        headers: {
          [MERCHANT_HEADER]: merchantId,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: this.#agent,
        headersTimeout: VAULT_ANSWER_TIMEOUT_MS,
        bodyTimeout: VAULT_ANSWER_TIMEOUT_MS,
      });
    } catch (error) {
      if (neverSent(error)) throw new CardholdError('vault_unavailable', { cause: error });
      throw lost(error, 'The connection to the vault failed after the request was sent');
    }
    let text: string;
    try {
      text = await response.body.text();
    } catch (error) {
      throw lost(error, 'The vault’s answer was cut off');
    }
    if (response.statusCode === 204) return undefined as T;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      if (response.statusCode >= 400 && response.statusCode < 500) {
        throw new CardholdError('vault_unavailable', { detail: 'The vault refused the request' });
      }
      throw lost(undefined, 'The vault answered with something not JSON');
    }
    if (response.statusCode < 300) return parsed as T;
    const code = (parsed as { code?: string }).code ?? '';
    if (PASSED_ON.has(code) && isErrorCode(code)) throw new CardholdError(code);
    const detail = `The vault refused the request (${isErrorCode(code) ? code : response.statusCode})`;
    if (response.statusCode >= 500 && !REFUSED_BEFORE_SENDING.has(code)) throw lost(undefined, detail);
    throw new CardholdError('vault_unavailable', { detail });
  }
}

function newAgent(tls: TlsMaterial): Agent {
  // One secure context for every connection, rather than one built per connection.
  const secureContext = createSecureContext({
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    minVersion: 'TLSv1.2',
  });
  return new Agent({
    connect: { secureContext, rejectUnauthorized: true },
    keepAliveTimeout: 10_000,
    connections: 64,
  });
}
