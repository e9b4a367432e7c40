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
  /** Deliveries in flight at once, over all endpoints. */
  concurrency?: number;
  /**
   * Deliveries in flight at once to one endpoint: a slow or silent endpoint (each attempt waiting out the
   * timeout) holds at most this many of the slots, and the others keep flowing.
   */
  perEndpoint?: number;
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
 * Sends the outbox's deliveries. It claims due deliveries with FOR UPDATE SKIP LOCKED and moves them a
 * lease ahead, so replicas never take the same one and a replica that dies mid-attempt leaves it to
 * another once the lease ends; the HTTP call runs outside any transaction. A result is recorded only if
 * the delivery was not re-claimed meanwhile (its attempt count is the fence). 2xx is success; anything
 * else is retried with exponential backoff and jitter until the horizon after the event, then abandoned.
 * Redirects are not followed and response bodies are discarded unread.
 *
 * Deliveries run as a pool, not in rounds: a slot freed by one delivery is refilled at once while there
 * is a backlog, so one endpoint that answers slowly (or not at all, until the timeout) never holds back
 * the others' deliveries; and it holds at most `perEndpoint` of the `concurrency` slots.
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
  /** Deliveries in flight, and how many go to each endpoint. */
  readonly #inFlight = new Set<Promise<void>>();
  readonly #perEndpoint = new Map<string, number>();
  /** The claim under way, if any: one at a time. */
  #filling: Promise<void> | undefined;
  /** The last fill stopped because every slot was taken, not because nothing more was due. */
  #backlog = false;
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
    this.#settings = { concurrency: 20, perEndpoint: 4, ...options.settings };
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
      // Connections are per origin, and several endpoints may share one: as many as there are slots, so
      // no delivery waits behind another endpoint's on the same host (the claim caps each endpoint).
      connections: this.#settings.concurrency,
    });
  }

  /** Looks for due deliveries every `pollIntervalMs`, and as soon as a slot frees while there is a backlog, until `stop`. */
  start(): void {
    this.#schedule(0);
  }

  /** Stops claiming, aborts requests in flight (they are recorded as failed and retried later) and waits. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#aborts.abort();
    await this.#filling;
    await Promise.all(this.#inFlight);
    await this.#agent.close();
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.#fill().finally(() => this.#schedule(this.#settings.pollIntervalMs));
    }, ms);
    this.#timer.unref();
  }

  /** Claims due deliveries into the free slots and starts them, without waiting for them to finish. */
  #fill(): Promise<void> {
    this.#filling ??= this.#claimWhileRoom().finally(() => {
      this.#filling = undefined;
      // A slot freed while this claim was finishing found it still under way: take it now.
      if (this.#backlog && !this.#stopped && this.#inFlight.size < this.#settings.concurrency)
        void this.#fill();
    });
    return this.#filling;
  }

  async #claimWhileRoom(): Promise<void> {
    try {
      // Each claim leaves out the endpoints whose slots are full, so a claim that took only a busy
      // endpoint's share is followed by one that reaches the rest.
      while (!this.#stopped && this.#inFlight.size < this.#settings.concurrency) {
        if ((await this.#claimAndLaunch()) === 0) {
          this.#backlog = false;
          return;
        }
      }
      this.#backlog = true;
    } catch (error) {
      // Wait for the next poll rather than claim again at every completion while the database fails.
      this.#backlog = false;
      this.#logger.warn({ err: { message: (error as Error).message } }, 'webhook claim failed');
    }
  }

  /** Claims into the free slots and starts what it claimed; answers how many. */
  async #claimAndLaunch(): Promise<number> {
    const now = new Date(this.#now());
    const claimed = await this.#claim(this.#settings.concurrency - this.#inFlight.size, now);
    if (claimed.length === 0) return 0;
    const secrets = await this.#secrets([...new Set(claimed.map((c) => c.endpoint_id))], now);
    for (const delivery of claimed) this.#launch(delivery, secrets.get(delivery.endpoint_id) ?? []);
    return claimed.length;
  }

  #launch(delivery: Claimed, secrets: string[] | 'unavailable'): void {
    const endpoint = delivery.endpoint_id;
    this.#perEndpoint.set(endpoint, (this.#perEndpoint.get(endpoint) ?? 0) + 1);
    const running: Promise<void> = this.#deliver(delivery, secrets).finally(() => {
      this.#inFlight.delete(running);
      const left = (this.#perEndpoint.get(endpoint) ?? 1) - 1;
      if (left > 0) this.#perEndpoint.set(endpoint, left);
      else this.#perEndpoint.delete(endpoint);
      // More is due than there were slots: take the next at once rather than at the next poll.
      if (this.#backlog && !this.#stopped) void this.#fill();
    });
    this.#inFlight.add(running);
  }

  /**
   * One round, for tests and tools that step the dispatcher: claims what is due into the free slots,
   * attempts it and waits for every delivery in flight to be recorded. Answers how many it claimed.
   */
  async runOnce(): Promise<number> {
    const claimed = await this.#claimAndLaunch();
    await Promise.all(this.#inFlight);
    return claimed;
  }

  /**
   * Claims up to `room` due deliveries, oldest first, at most `perEndpoint` in flight per endpoint
   * (counting those already running here). Only a bounded window of the oldest due deliveries is ranked
   * per endpoint, so a backlog of millions costs no more than a few.
   */
  async #claim(room: number, now: Date): Promise<Claimed[]> {
    if (room <= 0) return [];
    const leaseUntil = new Date(now.getTime() + this.#settings.requestTimeoutMs + 15_000);
    const cap = this.#settings.perEndpoint;
    const running = [...this.#perEndpoint];
    const full = running.filter(([, n]) => n >= cap).map(([id]) => id);
    const partly = running.filter(([, n]) => n < cap);
    return this.#sql<Claimed[]>`
      update webhooks.deliveries d
      set next_attempt_at = ${leaseUntil}, attempts = d.attempts + 1, updated_at = ${now}
      from (
        select id from webhooks.deliveries
        where id in (
          select ranked.id from (
            select id, endpoint_id,
              row_number() over (partition by endpoint_id order by next_attempt_at, id) as place
            from (
              select id, endpoint_id, next_attempt_at from webhooks.deliveries
              where status in ('pending', 'failed') and next_attempt_at <= ${now}
                and endpoint_id <> all(${full}::text[])
              order by next_attempt_at
              limit ${room * cap}
            ) oldest
          ) ranked
          left join unnest(${partly.map(([id]) => id)}::text[], ${partly.map(([, n]) => n)}::int[])
            as running (endpoint_id, n) using (endpoint_id)
          where ranked.place + coalesce(running.n, 0) <= ${cap}
        )
        and status in ('pending', 'failed') and next_attempt_at <= ${now}
        order by next_attempt_at
        limit ${room}
        for update skip locked
      ) due, webhooks.events ev, webhooks.endpoints ep
      where d.id = due.id and ev.id = d.event_id and ep.id = d.endpoint_id
      returning d.id, d.attempts, d.endpoint_id, d.merchant_id, d.event_id, ev.payload::text as body,
        ev.created_at as event_created_at, ep.url`;
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
