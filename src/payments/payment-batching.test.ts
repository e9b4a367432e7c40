import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backends, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import type { Authorized, Connector, ConnectorResult } from '../acquirers/connector.ts';
import { Router } from '../acquirers/routing.ts';
import { createLogger } from '../shared/logger.ts';
import type { Sql } from '../storage/database.ts';
import { enqueueEvents } from '../webhooks/outbox.ts';
import { type EventSink, PaymentService } from './payment-service.ts';
import type { VaultClient } from './vault-client.ts';

const TOKEN = `tok_${'b'.repeat(22)}`;

/**
 * A processor that approves everything, but only once `release` is called: the answers of a burst then
 * arrive together, so that they are recorded in shared statements.
 */
function heldConnector(): { connector: Connector; release: () => void; waiting: () => number } {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let waiting = 0;
  const refuse = async () => ({ kind: 'failed' as const, code: 'not_in_this_test' });
  return {
    release: () => open(),
    waiting: () => waiting,
    connector: {
      name: 'held',
      capabilities: {
        multipleCaptures: false,
        partialCapture: true,
        partialRefund: true,
        void: true,
        sync: false,
        currencies: 'any',
      },
      async authorize(input): Promise<ConnectorResult<Authorized>> {
        waiting++;
        await gate;
        return { kind: 'succeeded', value: { processorId: `held-${input.reference}`, capturedAmount: 0 } };
      },
      capture: refuse,
      void: refuse,
      refund: refuse,
      sync: refuse,
    },
  };
}

for (const backend of backends()) {
  describe(`payments: shared statements and their fallback (${backend})`, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(backend, 'payment-batching', { roles: ['vault', 'api'] });
    });
    after(async () => t?.close());

    test('a shared answer that fails is recorded one payment at a time: only the bad one fails', async () => {
      const sql = t.platform.services.apiSql as Sql;
      const held = heldConnector();
      // An event sink that refuses the events of one payment (as the outbox refuses a payload holding a
      // card number), and notes how many events each call carried.
      const calls: number[] = [];
      const events: EventSink = (tx, batch) => {
        calls.push(batch.length);
        const metadata = (e: (typeof batch)[number]) => e.data['metadata'] as Record<string, string>;
        if (batch.some((e) => metadata(e)['refuse'] === 'yes')) throw new Error('refused by the sink');
        return enqueueEvents(tx as unknown as Sql, batch);
      };
      const payments = new PaymentService({
        sql,
        vault: {} as VaultClient,
        router: new Router([held.connector]),
        events,
        logger: createLogger({ level: 'silent' }),
      });
      const ctx = { merchantId: t.merchantId };
      const count = 10;
      const confirmed = Array.from({ length: count }, (_, i) =>
        payments
          .createAndConfirm(ctx, {
            amount: 500 + i,
            currency: 'usd',
            captureMethod: 'manual',
            paymentMethod: TOKEN,
            // The last to be authorized, so its answer is in a shared batch, never alone.
            metadata: { refuse: i === count - 1 ? 'yes' : 'no' },
          })
          .then(
            (payment) => ({ ok: true as const, payment }),
            (error: unknown) => ({ ok: false as const, error }),
          ),
      );
      while (held.waiting() < count) await new Promise((resolve) => setTimeout(resolve, 5));
      held.release();
      const results = await Promise.all(confirmed);

      for (const [i, result] of results.entries()) {
        if (i === count - 1) {
          assert.equal(result.ok, false, 'the refused payment fails');
          continue;
        }
        assert.ok(result.ok, `payment ${i} is recorded`);
        assert.equal(result.payment.status, 'requires_capture');
        assert.equal(result.payment.amount_capturable, 500 + i);
      }
      // A shared batch that held the refused event failed, then each of its payments went alone.
      const shared = calls.findIndex((n) => n > 1);
      assert.ok(shared >= 0, `a shared answer happened (event batches: ${calls.join(', ')})`);
      assert.ok(
        calls.slice(shared + 1).every((n) => n === 1),
        'after the failed shared batch, one payment at a time',
      );
      const rows = await t.adminSql<{ status: string; n: number }[]>`
        select p.status, count(*)::int as n from payments.payment_intents p
        where p.merchant_id = ${t.merchantId} and p.payment_method = ${TOKEN}
        group by p.status order by p.status`;
      // The refused one stays processing with its attempt sent, for the reconciler to settle.
      assert.deepEqual(
        rows.map((r) => [r.status, r.n]),
        [
          ['processing', 1],
          ['requires_capture', count - 1],
        ],
      );
      const written = await t.adminSql<{ n: number }[]>`
        select count(*)::int as n from webhooks.events
        where merchant_id = ${t.merchantId} and type = 'payment_intent.amount_capturable_updated'
          and payload->'data'->'object'->>'payment_method' = ${TOKEN}`;
      assert.equal(written[0]?.n, count - 1, 'one event per recorded payment, none for the refused one');
    });
  });
}
