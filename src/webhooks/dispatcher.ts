import { randomInt } from 'node:crypto';
import { Agent, type Dispatcher, request } from 'undici';
import type { RoleMetrics } from '../http/metrics.ts';
import { version } from '../platform/version.ts';
import type { Logger } from '../shared/logger.ts';
import type { Sql } from '../storage/database.ts';
import type { WebhookSecretKey } from './secret-key.ts';
import { signWebhook } from './signature.ts';
import { assertWebhookUrl, publicOnlyLookup } from './url-policy.ts';

export interface DispatcherSettings {
  /** First retry delay; each further one doubles, up to the cap. */
  retryBaseMs: number;
  retryCapMs: number;
  /** Retries stop this long after the event was created: the delivery is then abandoned. */
  retryHorizonMs: number;
  pollIntervalMs: number;
  /** The whole request, from connecting to the end of the response. */
  requestTimeoutMs: number;
  /** Production: https only, never to private address literals. */
  production: boolean;
  /** Deliveries claimed (and attempted concurrently) per round. */
  batchSize?: number;
}

interface Claimed {
  id: string;
  attempts: number;
  endpoint_id: string;
  merchant_id: string;
  event_id: string;
  body: string;
  event_created_at: Date;
  url: string;
}

interface Outcome {
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  startedAt: Date;
}

export type DeliveryOutcome = 'succeeded' | 'failed' | 'abandoned';

/**
 * Sends the outbox's deliveries. Each round claims due deliveries with FOR UPDATE SKIP LOCKED and moves
 * them a lease ahead, so replicas never take the same one and a replica that dies mid-attempt leaves it
 * to another once the lease ends; the HTTP call runs outside any transaction. A result is recorded only
 * if the delivery was not re-claimed meanwhile (its attempt count is the fence). 2xx is success;
 * anything else is retried with exponential backoff and jitter until the horizon after the event, then
 * abandoned. Redirects are not followed and response bodies are discarded unread.
 */
export class WebhookDispatcher {
  readonly #sql: Sql;
  readonly #secretKey: WebhookSecretKey;
  readonly #settings: Required<DispatcherSettings>;
  readonly #logger: Logger;
  readonly #metrics: RoleMetrics | undefined;
  readonly #now: () => number;
  readonly #agent: Dispatcher;
  readonly #aborts = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #stopped = false;

  constructor(options: {
    sql: Sql;
    secretKey: WebhookSecretKey;
    settings: DispatcherSettings;
    logger: Logger;
    metrics?: RoleMetrics | undefined;
    /** Milliseconds since the epoch; tests move it. */
    now?: () => number;
  }) {
    this.#sql = options.sql;
    this.#secretKey = options.secretKey;
    this.#settings = { batchSize: 20, ...options.settings };
    this.#logger = options.logger.child({ component: 'webhook-dispatcher' });
    this.#metrics = options.metrics;
    this.#now = options.now ?? Date.now;
    const timeout = this.#settings.requestTimeoutMs;
    this.#agent = new Agent({
      // Production: a name that resolves (or is rebound) to a private address is refused when connecting.
      connect: this.#settings.production ? { timeout, lookup: publicOnlyLookup } : { timeout },
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: 4000,
      connections: 4,
    });
  }

  /** Polls every `pollIntervalMs` until `stop`. */
  start(): void {
    this.#schedule(0);
  }

  /** Stops polling, aborts requests in flight (they are recorded as failed and retried later) and waits. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#aborts.abort();
    await this.#round;
    await this.#agent.close();
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#round = this.#rounds().finally(() => this.#schedule(this.#settings.pollIntervalMs));
    }, ms);
    this.#timer.unref();
  }

  async #rounds(): Promise<void> {
    try {
      while (!this.#stopped && (await this.runOnce()) === this.#settings.batchSize) {
        // A full batch: more may be due, go on without waiting.
      }
    } catch (error) {
      this.#logger.warn({ err: { message: (error as Error).message } }, 'webhook round failed');
    }
  }

  /** One round: claims up to a batch of due deliveries, attempts them, records the results. */
  async runOnce(): Promise<number> {
    const now = new Date(this.#now());
    const leaseUntil = new Date(now.getTime() + this.#settings.requestTimeoutMs + 15_000);
    const sql = this.#sql;
    const claimed = await sql<Claimed[]>`
      update webhooks.deliveries d
      set next_attempt_at = ${leaseUntil}, attempts = d.attempts + 1, updated_at = ${now}
      from (
        select id from webhooks.deliveries
        where status in ('pending', 'failed') and next_attempt_at <= ${now}
        order by next_attempt_at
        limit ${this.#settings.batchSize}
        for update skip locked
      ) due, webhooks.events ev, webhooks.endpoints ep
      where d.id = due.id and ev.id = d.event_id and ep.id = d.endpoint_id
      returning d.id, d.attempts, d.endpoint_id, d.merchant_id, d.event_id, ev.payload::text as body,
        ev.created_at as event_created_at, ep.url`;
    if (claimed.length === 0) return 0;
    const secrets = await this.#secrets([...new Set(claimed.map((c) => c.endpoint_id))], now);
    await Promise.all(
      claimed.map((delivery) => this.#deliver(delivery, secrets.get(delivery.endpoint_id) ?? [])),
    );
    return claimed.length;
  }

  /**
   * Every currently valid secret per endpoint, current first; `unavailable` for an endpoint whose secret
   * cannot be opened (its key version gone, the key provider down), so that only its deliveries fail.
   */
  async #secrets(endpointIds: string[], now: Date): Promise<Map<string, string[] | 'unavailable'>> {
    const rows = await this.#sql<{ endpoint_id: string; sealed_secret: Buffer; key_version: number }[]>`
      select endpoint_id, sealed_secret, key_version from webhooks.endpoint_secrets
      where endpoint_id = any(${endpointIds}) and (expires_at is null or expires_at > ${now})
      order by endpoint_id, expires_at desc nulls first`;
    const out = new Map<string, string[] | 'unavailable'>();
    for (const row of rows) {
      const known = out.get(row.endpoint_id);
      if (known === 'unavailable') continue;
      try {
        const secret = this.#secretKey.open(row.sealed_secret, row.key_version, row.endpoint_id);
        out.set(row.endpoint_id, [...(known ?? []), secret.expose()]);
      } catch {
        out.set(row.endpoint_id, 'unavailable');
      }
    }
    return out;
  }

  async #deliver(delivery: Claimed, secrets: string[] | 'unavailable'): Promise<void> {
    const startedAt = new Date(this.#now());
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      if (secrets === 'unavailable') {
        // Recorded like any failed attempt: retried with backoff, abandoned at the horizon.
        error = 'secret_unavailable';
      } else if (secrets.length === 0) {
        error = 'endpoint_deleted';
      } else {
        assertWebhookUrl(delivery.url, this.#settings.production);
        statusCode = await this.#post(delivery, secrets, startedAt);
        if (statusCode < 200 || statusCode > 299) error = `http_${statusCode}`;
      }
    } catch (caught) {
      error = classify(caught);
    }
    const outcome: Outcome = {
      statusCode,
      error,
      startedAt,
      durationMs: Math.max(0, Math.round(performance.now() - started)),
    };
    try {
      const recorded = await this.#record(delivery, outcome);
      if (recorded) this.#metrics?.webhookDelivery(recorded);
      this.#logger.info(
        {
          delivery: delivery.id,
          endpoint: delivery.endpoint_id,
          event: delivery.event_id,
          attempt: delivery.attempts,
          status_code: statusCode,
          error,
          outcome: recorded ?? 'superseded',
        },
        'webhook attempt',
      );
    } catch (caught) {
      // The lease runs out and another round retries it.
      this.#logger.warn(
        { delivery: delivery.id, err: { message: (caught as Error).message } },
        'webhook attempt not recorded',
      );
    }
  }

  async #post(delivery: Claimed, secrets: string[], startedAt: Date): Promise<number> {
    const timestamp = Math.floor(startedAt.getTime() / 1000);
    const response = await request(delivery.url, {
      method: 'POST',
      dispatcher: this.#agent,
      signal: AbortSignal.any([this.#aborts.signal, AbortSignal.timeout(this.#settings.requestTimeoutMs)]),
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'user-agent': `cardhold-webhooks/${version}`,
        'cardhold-signature': signWebhook(delivery.body, secrets, timestamp),
        'cardhold-event-id': delivery.event_id,
        'cardhold-delivery-id': delivery.id,
      },
      body: delivery.body,
    });
    // Never read, never stored: only the status matters.
    await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    return response.statusCode;
  }

  /** Records the attempt and the delivery's next state; undefined if another round re-claimed it. */
  async #record(delivery: Claimed, outcome: Outcome): Promise<DeliveryOutcome | undefined> {
    const now = new Date(this.#now());
    let status: DeliveryOutcome;
    let next: Date | null = null;
    if (outcome.error === null) status = 'succeeded';
    else {
      next = new Date(now.getTime() + this.backoffMs(delivery.attempts));
      const horizon = delivery.event_created_at.getTime() + this.#settings.retryHorizonMs;
      const deleted = outcome.error === 'endpoint_deleted';
      status = deleted || next.getTime() > horizon ? 'abandoned' : 'failed';
      if (status === 'abandoned') next = null;
    }
    return this.#sql.begin(async (tx) => {
      const updated = await tx`
        update webhooks.deliveries
        set status = ${status}, next_attempt_at = ${next}, last_attempt_at = ${outcome.startedAt},
          last_status_code = ${outcome.statusCode}, last_error = ${outcome.error}, updated_at = ${now}
        where id = ${delivery.id} and attempts = ${delivery.attempts}
          -- An endpoint deleted (or a delivery abandoned) while this attempt was in flight stays so.
          and status in ('pending', 'failed')
        returning id`;
      await tx`
        insert into webhooks.delivery_attempts
          (delivery_id, attempt, merchant_id, started_at, duration_ms, status_code, error, outcome)
        values (${delivery.id}, ${delivery.attempts}, ${delivery.merchant_id}, ${outcome.startedAt},
          ${outcome.durationMs}, ${outcome.statusCode}, ${outcome.error},
          ${outcome.error === null ? 'succeeded' : 'failed'})`;
      return updated.length > 0 ? status : undefined;
    });
  }

  /** The delay after the `attempt`-th failure: base × 2^(attempt−1), capped, with equal jitter (½ to 1×). */
  backoffMs(attempt: number): number {
    const { retryBaseMs, retryCapMs } = this.#settings;
    const full = Math.min(retryCapMs, retryBaseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
    const half = Math.floor(full / 2);
    return full - half + (half > 0 ? randomInt(half + 1) : 0);
  }
}

/** A short, closed error code for the delivery log; never a message, which might quote the response. */
function classify(error: unknown): string {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  if (code === 'webhook_url_invalid') return 'url_refused';
  if (name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
    return 'timeout';
  if (name === 'AbortError' || code === 'UND_ERR_ABORTED') return 'aborted';
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect_timeout';
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'connection_reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns_failure';
  if (typeof code === 'string' && (code.startsWith('ERR_TLS') || /CERT|SSL|SIGNATURE/.test(code)))
    return 'tls_error';
  return 'network_error';
}
