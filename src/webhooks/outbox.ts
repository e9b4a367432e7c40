import { CardholdError } from '../shared/errors.ts';
import { findPans } from '../shared/pan-detect.ts';
import type { Sql } from '../storage/database.ts';
import { eventTypePattern, newWebhookId } from './identifiers.ts';

/** What a merchant receives, Stripe-like; `created` is unix seconds. */
export interface EventPayload {
  id: string;
  object: 'event';
  type: string;
  created: number;
  livemode: boolean;
  data: { object: Record<string, unknown> };
}

export interface NewEvent {
  merchantId: string;
  type: string;
  /** The object the event is about (a payment, a refund…): ids, amounts, last four; never card data. */
  data: Record<string, unknown>;
}

const EVENT_TYPE = new RegExp(eventTypePattern);

/**
 * Writes an event and one pending delivery per enabled endpoint of the merchant that wants its type, in
 * the caller's transaction: the event exists if and only if the business change it reports commits.
 * Call it inside `sql.begin(tx => …)` with that `tx`. Refuses (throws, so the caller's transaction rolls
 * back) a payload whose JSON holds anything that could be a card number: defence in depth behind the
 * callers, which should only ever pass ids, amounts and last fours.
 */
export async function enqueueEvent(
  tx: Sql,
  event: NewEvent,
  options: { now?: Date } = {},
): Promise<{ id: string }> {
  const [written] = await enqueueEvents(tx, [event], options);
  return written as { id: string };
}

/**
 * Several events in one go (payments answered together): one INSERT for the events, one SELECT for the
 * endpoints that want them and one INSERT for the deliveries, whatever their number.
 */
export async function enqueueEvents(
  tx: Sql,
  events: NewEvent[],
  options: { now?: Date } = {},
): Promise<{ id: string }[]> {
  if (events.length === 0) return [];
  const now = options.now ?? new Date();
  const rows: {
    id: string;
    merchant_id: string;
    type: string;
    payload: ReturnType<Sql['json']>;
    created_at: Date;
  }[] = [];
  for (const event of events) {
    if (!EVENT_TYPE.test(event.type) || event.type.length > 100) {
      throw new TypeError('An event type is lowercase words joined by dots, e.g. payment_intent.succeeded');
    }
    const environment = await merchantEnvironment(tx, event.merchantId);
    const id = newWebhookId('evt');
    const payload: EventPayload = {
      id,
      object: 'event',
      type: event.type,
      created: Math.floor(now.getTime() / 1000),
      livemode: environment === 'live',
      data: { object: event.data },
    };
    if (findPans(JSON.stringify(payload)).length > 0) throw new CardholdError('webhook_payload_rejected');
    rows.push({
      id,
      merchant_id: event.merchantId,
      type: event.type,
      payload: tx.json(payload as never),
      created_at: now,
    });
  }
  const merchants = [...new Set(events.map((e) => e.merchantId))];
  // Sent together on the transaction's connection (postgres.js pipelines them): one round trip.
  const [, endpoints] = await Promise.all([
    tx`insert into webhooks.events ${tx(rows)}`,
    tx<{ id: string; merchant_id: string; enabled_events: string[] }[]>`
      select id, merchant_id, enabled_events from webhooks.endpoints
      where merchant_id in ${tx(merchants)} and disabled_at is null`,
  ]);
  const deliveries = [];
  for (const row of rows) {
    for (const endpoint of endpoints) {
      if (endpoint.merchant_id !== row.merchant_id) continue;
      if (!endpoint.enabled_events.includes(row.type) && !endpoint.enabled_events.includes('*')) continue;
      deliveries.push({
        id: newWebhookId('whd'),
        event_id: row.id,
        endpoint_id: endpoint.id,
        merchant_id: row.merchant_id,
        status: 'pending',
        next_attempt_at: now,
        created_at: now,
        updated_at: now,
      });
    }
  }
  if (deliveries.length > 0) await tx`insert into webhooks.deliveries ${tx(deliveries)}`;
  return rows.map((row) => ({ id: row.id }));
}

/** A merchant's environment never changes once created: asked of the database once per process. */
const environments = new Map<string, 'test' | 'live'>();

async function merchantEnvironment(tx: Sql, merchantId: string): Promise<'test' | 'live'> {
  const known = environments.get(merchantId);
  if (known) return known;
  const rows = await tx<{ environment: 'test' | 'live' }[]>`
    select environment from identity.merchants where id = ${merchantId}`;
  const environment = rows[0]?.environment;
  if (!environment) throw new CardholdError('merchant_not_found');
  if (environments.size >= 10_000) environments.clear();
  environments.set(merchantId, environment);
  return environment;
}
