import type { AuditTrail } from '../audit/audit-trail.ts';
import { type AccessContext, type AuditAction, accessEvent, type DetailValue } from '../audit/events.ts';
import { hasControlCharacter } from '../shared/control-characters.ts';
import { CardholdError, type ErrorCode } from '../shared/errors.ts';
import type { Secret } from '../shared/secret.ts';
import type { Sql } from '../storage/database.ts';
import { newSigningSecret, newWebhookId } from './identifiers.ts';
import type { EventPayload } from './outbox.ts';
import type { WebhookSecretKey } from './secret-key.ts';
import { assertWebhookUrl } from './url-policy.ts';

export interface EndpointView {
  id: string;
  url: string;
  enabled_events: string[];
  description: string | null;
  created_at: string;
  /** After a rotation, until when the previous secret still signs; null when only one secret signs. */
  previous_secret_expires_at: string | null;
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'abandoned';

export interface AttemptView {
  attempt: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  outcome: 'succeeded' | 'failed';
}

export interface DeliveryView {
  id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  attempt_log: AttemptView[];
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
}

export interface PageQuery {
  limit: number;
  startingAfter?: string | undefined;
}

type EndpointRow = Omit<EndpointView, 'created_at' | 'previous_secret_expires_at'> & {
  created_at: Date;
  previous_secret_expires_at: Date | null;
};

/** A delivery as selected: the view's fields, with dates as dates and without the attempts. */
type DeliveryRow = Omit<
  DeliveryView,
  'next_attempt_at' | 'last_attempt_at' | 'created_at' | 'attempt_log'
> & {
  next_attempt_at: Date | null;
  last_attempt_at: Date | null;
  created_at: Date;
};

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const endpointView = (r: EndpointRow): EndpointView => ({
  ...r,
  created_at: r.created_at.toISOString(),
  previous_secret_expires_at: iso(r.previous_secret_expires_at),
});

/** Seconds the previous secret keeps signing after a rotation, by default, and at most. */
export const DEFAULT_ROTATION_OVERLAP_SECONDS = 86_400;
export const MAX_ROTATION_OVERLAP_SECONDS = 7 * 86_400;

/**
 * A merchant's webhook endpoints, events and delivery log, on the api role. Every query is scoped by
 * the caller's merchant, so another merchant's endpoint, event or delivery is exactly as missing as one
 * that never existed. Endpoint creation, deletion, secret rotation and manual retries commit with their
 * audit records; a signing secret leaves only in the response that creates it.
 */
export class Webhooks {
  readonly #sql: Sql;
  readonly #trail: AuditTrail;
  readonly #secretKey: WebhookSecretKey;
  readonly #production: boolean;
  readonly #now: () => Date;

  constructor(options: {
    sql: Sql;
    trail: AuditTrail;
    secretKey: WebhookSecretKey;
    production: boolean;
    now?: () => Date;
  }) {
    this.#sql = options.sql;
    this.#trail = options.trail;
    this.#secretKey = options.secretKey;
    this.#production = options.production;
    this.#now = options.now ?? (() => new Date());
  }

  /** Runs `work` in a transaction that commits with one audit record of `action` on `resource`. */
  #audited<T>(
    ctx: AccessContext,
    action: AuditAction,
    resource: { type: string; id: string },
    work: (db: Sql) => Promise<T>,
    details?: Record<string, DetailValue>,
  ): Promise<T> {
    return this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const result = await work(db);
        await audit.insert(db, [accessEvent(ctx, action, resource, ctx.merchantId, { details })]);
        return result;
      }),
    ) as Promise<T>;
  }

  async createEndpoint(
    ctx: AccessContext,
    input: { url: string; enabledEvents: string[]; description?: string | undefined },
  ): Promise<{ endpoint: EndpointView; secret: Secret<string> }> {
    // Control characters (NUL, which PostgreSQL refuses, among them) are refused as bad input.
    for (const [field, value] of [
      ['url', input.url],
      ['description', input.description ?? ''],
    ] as const) {
      if (hasControlCharacter(value)) {
        throw new CardholdError('request_invalid', { field, detail: 'Control characters are not allowed' });
      }
    }
    const url = assertWebhookUrl(input.url, this.#production).href;
    const id = newWebhookId('we');
    const secret = newSigningSecret();
    const now = this.#now();
    const endpoint = await this.#audited(
      ctx,
      'webhook_endpoint.create',
      { type: 'webhook_endpoint', id },
      async (db) => {
        const rows = await db<EndpointRow[]>`
          insert into webhooks.endpoints (id, merchant_id, url, enabled_events, description, created_at)
          values (${id}, ${ctx.merchantId}, ${url}, ${input.enabledEvents}, ${input.description ?? null}, ${now})
          returning id, url, enabled_events, description, created_at, null::timestamptz as previous_secret_expires_at`;
        await this.#insertSecret(db, id, secret, now);
        return endpointView(rows[0] as EndpointRow);
      },
      { enabled_events: input.enabledEvents.join(' ') },
    );
    return { endpoint, secret };
  }

  async #insertSecret(db: Sql, endpointId: string, secret: Secret<string>, now: Date): Promise<void> {
    await db`
      insert into webhooks.endpoint_secrets (endpoint_id, sealed_secret, key_version, created_at)
      values (${endpointId}, ${this.#secretKey.seal(secret, endpointId)}, ${this.#secretKey.version}, ${now})`;
  }

  #selectEndpoints(db: Sql, merchantId: string, now: Date) {
    return db`
      select e.id, e.url, e.enabled_events, e.description, e.created_at,
        (select max(s.expires_at) from webhooks.endpoint_secrets s
          where s.endpoint_id = e.id and s.expires_at > ${now}) as previous_secret_expires_at
      from webhooks.endpoints e
      where e.merchant_id = ${merchantId} and e.disabled_at is null`;
  }

  async getEndpoint(ctx: AccessContext, id: string): Promise<EndpointView> {
    const db = this.#sql;
    const rows = await db<
      EndpointRow[]
    >`${this.#selectEndpoints(db, ctx.merchantId, this.#now())} and e.id = ${id}`;
    if (!rows[0]) throw new CardholdError('webhook_endpoint_not_found');
    return endpointView(rows[0]);
  }

  async listEndpoints(ctx: AccessContext, query: PageQuery): Promise<Page<EndpointView>> {
    const db = this.#sql;
    const cursor = await this.#cursor(
      'webhooks.endpoints',
      ctx.merchantId,
      query,
      'webhook_endpoint_not_found',
    );
    const rows = await db<EndpointRow[]>`
      ${this.#selectEndpoints(db, ctx.merchantId, this.#now())}
      ${cursor ? db`and (e.created_at, e.id) < (${cursor.created_at}::text::timestamptz, ${cursor.id})` : db``}
      order by e.created_at desc, e.id desc limit ${query.limit + 1}`;
    return { data: rows.slice(0, query.limit).map(endpointView), has_more: rows.length > query.limit };
  }

  /** `starting_after` must be one of the merchant's own objects; anything else is not found. */
  async #cursor(
    table: 'webhooks.endpoints' | 'webhooks.events',
    merchantId: string,
    query: PageQuery,
    missing: ErrorCode,
  ): Promise<{ created_at: string; id: string } | undefined> {
    if (!query.startingAfter) return undefined;
    const rows = await this.#sql<{ created_at: string; id: string }[]>`
      select created_at::text as created_at, id from ${this.#sql(table)}
      where merchant_id = ${merchantId} and id = ${query.startingAfter}`;
    if (!rows[0]) throw new CardholdError(missing, { field: 'starting_after' });
    return rows[0];
  }

  /**
   * Stops sending to the endpoint: it is marked disabled, its secrets are deleted and its outstanding
   * deliveries abandoned. Its delivery log is kept.
   */
  async deleteEndpoint(ctx: AccessContext, id: string): Promise<void> {
    const now = this.#now();
    await this.#audited(ctx, 'webhook_endpoint.delete', { type: 'webhook_endpoint', id }, async (db) => {
      const rows = await db`
        update webhooks.endpoints set disabled_at = ${now}
        where id = ${id} and merchant_id = ${ctx.merchantId} and disabled_at is null returning id`;
      if (rows.length === 0) throw new CardholdError('webhook_endpoint_not_found');
      await db`delete from webhooks.endpoint_secrets where endpoint_id = ${id}`;
      await db`
        update webhooks.deliveries
        set status = 'abandoned', next_attempt_at = null, last_error = 'endpoint_deleted', updated_at = ${now}
        where endpoint_id = ${id} and status in ('pending', 'failed')`;
    });
  }

  /**
   * A new current secret; the old one keeps signing for `overlapSeconds` (0 ends it now). A secret from
   * an earlier rotation that is still in its overlap ends now, so at most two secrets ever sign.
   */
  async rotateSecret(
    ctx: AccessContext,
    id: string,
    overlapSeconds: number,
  ): Promise<{ endpoint: EndpointView; secret: Secret<string> }> {
    const secret = newSigningSecret();
    const now = this.#now();
    const until = new Date(now.getTime() + overlapSeconds * 1000);
    await this.#audited(
      ctx,
      'webhook_endpoint.rotate_secret',
      { type: 'webhook_endpoint', id },
      async (db) => {
        const rows = await db`
          select id from webhooks.endpoints
          where id = ${id} and merchant_id = ${ctx.merchantId} and disabled_at is null for update`;
        if (rows.length === 0) throw new CardholdError('webhook_endpoint_not_found');
        // A secret still in the overlap of an earlier rotation ends now: at most two ever sign.
        await db`
          delete from webhooks.endpoint_secrets
          where endpoint_id = ${id} and expires_at is not null`;
        if (overlapSeconds > 0) {
          await db`
            update webhooks.endpoint_secrets set expires_at = ${until}
            where endpoint_id = ${id} and expires_at is null`;
        } else {
          await db`delete from webhooks.endpoint_secrets where endpoint_id = ${id}`;
        }
        await this.#insertSecret(db, id, secret, now);
      },
      { overlap_seconds: overlapSeconds },
    );
    return { endpoint: await this.getEndpoint(ctx, id), secret };
  }

  async getEvent(ctx: AccessContext, id: string): Promise<EventPayload> {
    const rows = await this.#sql<{ payload: EventPayload }[]>`
      select payload from webhooks.events where id = ${id} and merchant_id = ${ctx.merchantId}`;
    if (!rows[0]) throw new CardholdError('event_not_found');
    return rows[0].payload;
  }

  async listEvents(
    ctx: AccessContext,
    query: PageQuery & { type?: string | undefined },
  ): Promise<Page<EventPayload>> {
    const db = this.#sql;
    const cursor = await this.#cursor('webhooks.events', ctx.merchantId, query, 'event_not_found');
    const rows = await db<{ payload: EventPayload }[]>`
      select payload from webhooks.events
      where merchant_id = ${ctx.merchantId}
        ${query.type ? db`and type = ${query.type}` : db``}
        ${cursor ? db`and (created_at, id) < (${cursor.created_at}::text::timestamptz, ${cursor.id})` : db``}
      order by created_at desc, id desc limit ${query.limit + 1}`;
    return { data: rows.slice(0, query.limit).map((r) => r.payload), has_more: rows.length > query.limit };
  }

  /** The delivery log of one endpoint, newest first, each delivery with its attempts. */
  async listDeliveries(
    ctx: AccessContext,
    endpointId: string,
    query: PageQuery & { status?: DeliveryStatus | undefined },
  ): Promise<Page<DeliveryView>> {
    await this.getEndpoint(ctx, endpointId);
    const db = this.#sql;
    let cursor: { created_at: string; id: string } | undefined;
    if (query.startingAfter) {
      const rows = await db<{ created_at: string; id: string }[]>`
        select created_at::text as created_at, id from webhooks.deliveries
        where merchant_id = ${ctx.merchantId} and endpoint_id = ${endpointId} and id = ${query.startingAfter}`;
      if (!rows[0]) throw new CardholdError('webhook_delivery_not_found', { field: 'starting_after' });
      cursor = rows[0];
    }
    const rows = await db<DeliveryRow[]>`
      select ${db.unsafe(deliveryColumns)}
      from webhooks.deliveries d join webhooks.events ev on ev.id = d.event_id
      where d.merchant_id = ${ctx.merchantId} and d.endpoint_id = ${endpointId}
        ${query.status ? db`and d.status = ${query.status}` : db``}
        ${cursor ? db`and (d.created_at, d.id) < (${cursor.created_at}::text::timestamptz, ${cursor.id})` : db``}
      order by d.created_at desc, d.id desc limit ${query.limit + 1}`;
    const page = rows.slice(0, query.limit);
    return { data: await this.#withAttempts(page), has_more: rows.length > query.limit };
  }

  async #withAttempts(rows: DeliveryRow[]): Promise<DeliveryView[]> {
    if (rows.length === 0) return [];
    const attempts = await this.#sql<(AttemptView & { delivery_id: string; started: Date })[]>`
      select delivery_id, attempt, started_at as started, duration_ms, status_code, error, outcome
      from webhooks.delivery_attempts where delivery_id = any(${rows.map((r) => r.id)})
      order by delivery_id, attempt`;
    return rows.map((r) => ({
      ...r,
      next_attempt_at: iso(r.next_attempt_at),
      last_attempt_at: iso(r.last_attempt_at),
      created_at: r.created_at.toISOString(),
      attempt_log: attempts
        .filter((a) => a.delivery_id === r.id)
        .map((a) => ({
          attempt: a.attempt,
          started_at: a.started.toISOString(),
          duration_ms: a.duration_ms,
          status_code: a.status_code,
          error: a.error,
          outcome: a.outcome,
        })),
    }));
  }

  /**
   * Sends the delivery again as soon as the dispatcher next polls, whatever its state. Past the retry
   * horizon this is one more attempt: a failure abandons it again. An attempt in flight (claimed, its
   * result not yet recorded) is left to finish: the retry does not start a second one beside it.
   */
  async retryDelivery(ctx: AccessContext, id: string): Promise<DeliveryView> {
    const now = this.#now();
    await this.#audited(ctx, 'webhook_delivery.retry', { type: 'webhook_delivery', id }, async (db) => {
      const rows = await db`
        update webhooks.deliveries d
        set status = case when d.status = 'failed' then 'failed' else 'pending' end,
          next_attempt_at = case
            when d.attempts > 0 and not exists (
              select 1 from webhooks.delivery_attempts a where a.delivery_id = d.id and a.attempt = d.attempts)
              then d.next_attempt_at
            else ${now} end,
          updated_at = ${now}
        from webhooks.endpoints e
        where d.id = ${id} and d.merchant_id = ${ctx.merchantId}
          and e.id = d.endpoint_id and e.disabled_at is null
        returning d.id`;
      if (rows.length === 0) throw new CardholdError('webhook_delivery_not_found');
    });
    const rows = await this.#sql<DeliveryRow[]>`
      select ${this.#sql.unsafe(deliveryColumns)}
      from webhooks.deliveries d join webhooks.events ev on ev.id = d.event_id
      where d.id = ${id} and d.merchant_id = ${ctx.merchantId}`;
    const [view] = await this.#withAttempts(rows);
    if (!view) throw new CardholdError('webhook_delivery_not_found');
    return view;
  }
}

const deliveryColumns = `d.id, d.event_id, ev.type as event_type, d.endpoint_id, d.status, d.attempts,
  d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.created_at`;
