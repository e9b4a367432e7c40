import { createSecureContext } from 'node:tls';
import { Agent, request } from 'undici';
import { MERCHANT_HEADER } from '../auth/authenticate.ts';
import type { TlsMaterial } from '../http/create-server.ts';
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

/** Vault errors the api passes on as they are; anything else from the vault means it cannot serve. */
const PASSED_ON = new Set(['token_not_found', 'cvv_slot_not_found', 'forward_target_not_allowed']);

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

  forward(merchantId: string, call: ForwardCall): Promise<ForwardAnswer> {
    return this.#call<ForwardAnswer>('POST', '/v1/forward', merchantId, call);
  }

  /** The authorization outcome became known later: the CVV goes now (PCI DSS 3.3.1.2). */
  async settleCvv(merchantId: string, slotId: string, outcome: 'approved' | 'declined'): Promise<void> {
    await this.#call('POST', `/v1/cvv-slots/${slotId}/settle`, merchantId, { outcome });
  }

  async #call<T>(method: string, path: string, merchantId: string, body?: unknown): Promise<T> {
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
        headersTimeout: 70_000,
        bodyTimeout: 70_000,
      });
    } catch (error) {
      throw new CardholdError('vault_unavailable', { cause: error });
    }
    const text = await response.body.text();
    if (response.statusCode === 204) return undefined as T;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CardholdError('vault_unavailable', { detail: 'The vault answered with something not JSON' });
    }
    if (response.statusCode < 300) return parsed as T;
    const code = (parsed as { code?: string }).code ?? '';
    if (PASSED_ON.has(code) && isErrorCode(code)) throw new CardholdError(code);
    throw new CardholdError('vault_unavailable', {
      detail: `The vault refused the request (${isErrorCode(code) ? code : response.statusCode})`,
    });
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
