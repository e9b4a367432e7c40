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
  if (!EVENT_TYPE.test(event.type) || event.type.length > 100) {
    throw new TypeError('An event type is lowercase words joined by dots, e.g. payment_intent.succeeded');
  }
  const now = options.now ?? new Date();
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
  const text = JSON.stringify(payload);
  if (findPans(text).length > 0) throw new CardholdError('webhook_payload_rejected');
  // Sent together on the transaction's connection (postgres.js pipelines them): one round trip.
  const [, endpoints] = await Promise.all([
    tx`
      insert into webhooks.events (id, merchant_id, type, payload, created_at)
      values (${id}, ${event.merchantId}, ${event.type}, ${tx.json(payload as never)}, ${now})`,
    tx<{ id: string }[]>`
      select id from webhooks.endpoints
      where merchant_id = ${event.merchantId} and disabled_at is null
        and enabled_events && array[${event.type}, '*']::text[]`,
  ]);
  if (endpoints.length > 0) {
    const rows = endpoints.map((endpoint) => ({
      id: newWebhookId('whd'),
      event_id: id,
      endpoint_id: endpoint.id,
      merchant_id: event.merchantId,
      status: 'pending',
      next_attempt_at: now,
      created_at: now,
      updated_at: now,
    }));
    await tx`insert into webhooks.deliveries ${tx(rows)}`;
  }
  return { id };
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
