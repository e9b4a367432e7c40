import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { acquirerTestCards, testCvvs } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { openLocalCa } from '../keys/local-ca.ts';
import { CvvSlots } from '../vault/cvv-slots.ts';
import type { PaymentStatus } from './payment-status.ts';
import type { AttemptRow } from './payment-views.ts';

/**
 * Outcomes the api must not mistake for "nothing happened": the vault took a forward (and the acquirer
 * acted on it) but its answer never reached the api; and a processor that refuses the request itself
 * (401), which is no card decline. The api reaches the vault through a TLS-terminating proxy of this
 * test that can lose the vault's answers; a fake processor answers every request with 401.
 */

interface Payment {
  id: string;
  status: PaymentStatus;
  amount_capturable: number;
  amount_received: number;
  amount_refunded: number;
  connector: string | null;
  code?: string;
}

/** Listens on a port of the system's choosing and returns it. */
async function listenAnywhere(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const backend = backends().at(-1) ?? 'embedded';

describe(`ambiguous and refused processor outcomes (${backend})`, () => {
  let t: TestPlatform;
  let proxy: Server;
  let locked: Server;
  const lockedHits: string[] = [];
  /** When set, the proxy passes forwards to the vault, waits for its whole answer, then drops it. */
  let loseForwards = false;
  let lostForwards = 0;

  before(async () => {
    // Both servers hold their ports from the start (a port released and bound again later could be
    // taken meanwhile); their certificates come from the platform's CA once it has started.
    let upstream: Awaited<ReturnType<TestPlatform['serviceAgent']>>;
    proxy = createHttpsServer({}, (req, res) => forwardThrough(req, res));
    locked = createHttpsServer({}, (req, res) => refuseLocked(req, res));
    const [proxyPort, lockedPort] = [await listenAnywhere(proxy), await listenAnywhere(locked)];
    const lockedUrl = `https://127.0.0.1:${lockedPort}`;
    t = await startTestPlatform(backend, 'ambiguous-outcomes', {
      roles: ['vault', 'api', 'acquirer'],
      env: {
        CARDHOLD_VAULT_URL: `https://127.0.0.1:${proxyPort}`,
        CARDHOLD_FORWARD_ALLOWLIST: lockedUrl,
        CARDHOLD_CONNECTORS: JSON.stringify([
          { name: 'locked', type: 'test-acquirer', url: lockedUrl },
          { name: 'primary', type: 'test-acquirer' },
          { name: 'secondary', type: 'test-acquirer' },
          { name: 'one-capture', type: 'test-acquirer', capabilities: { multiple_captures: false } },
        ]),
        CARDHOLD_ROUTING_RULES: JSON.stringify([
          { when: { currency: ['CAD', 'NOK'] }, connectors: ['locked'] },
          { when: { currency: ['JPY', 'SEK'] }, connectors: ['locked', 'primary'] },
          { when: { currency: ['CHF'] }, connectors: ['one-capture'] },
          { when: {}, connectors: ['primary', 'secondary'] },
        ]),
        CARDHOLD_RECONCILE_INTERVAL_SECONDS: '3600',
      },
    });
    const ca = await openLocalCa(t.dataDir);
    const vaultCert = await ca.certificate('vault');
    const acquirerCert = await ca.certificate('acquirer');
    // The api's view of the vault: the vault's own certificate, and the api's towards the real vault.
    upstream = await t.serviceAgent('api');
    proxy.setSecureContext({ cert: vaultCert.certPem, key: vaultCert.keyPem });
    locked.setSecureContext({ cert: acquirerCert.certPem, key: acquirerCert.keyPem });
    function forwardThrough(req: IncomingMessage, res: ServerResponse) {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const headers = { ...req.headers };
        delete headers.host;
        delete headers.connection;
        void request(`${t.vaultUrl}${req.url}`, {
          method: req.method as 'POST',
          headers,
          body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
          dispatcher: upstream,
        }).then(
          async (answer) => {
            const body = Buffer.from(await answer.body.arrayBuffer());
            if (loseForwards && req.url === '/v1/forward') {
              lostForwards++;
              res.socket?.destroy();
              return;
            }
            const out: Record<string, string> = {};
            for (const [name, value] of Object.entries(answer.headers)) {
              if (typeof value === 'string' && name !== 'connection' && name !== 'transfer-encoding')
                out[name] = value;
            }
            res.writeHead(answer.statusCode, out).end(body);
          },
          () => res.socket?.destroy(),
        );
      });
    }
    // A processor that refuses the vault itself: every request gets 401, as a bad client certificate would;
    // except payments in SEK, which it declines the way Stripe does (402), and in NOK, whose requests it
    // finds malformed (400).
    function refuseLocked(req: IncomingMessage, res: ServerResponse) {
      lockedHits.push(`${req.method} ${req.url}`);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        const [status, answer] = body.includes('"currency":"SEK"')
          ? [402, '{"code":"card_declined","decline_code":"do_not_honor"}']
          : body.includes('"currency":"NOK"')
            ? [400, '{"code":"request_invalid"}']
            : [401, '{"code":"unauthenticated"}'];
        res.writeHead(status, { 'content-type': 'application/json' }).end(answer);
      });
    }
  });

  after(async () => {
    await t?.close();
    proxy?.closeAllConnections();
    locked?.closeAllConnections();
    await new Promise((resolve) => proxy?.close(resolve));
    await new Promise((resolve) => locked?.close(resolve));
  });

  const api = (path: string) => `${t.apiUrl}${path}`;
  const tokenize = async (pan: string) => {
    const r = await t.request<{ token: { id: string }; cvv_slot: { id: string } }>(
      'POST',
      `${t.vaultUrl}/v1/tokens`,
      { body: { pan, exp_month: 12, exp_year: futureYear, cvv: testCvvs.three } },
    );
    assert.equal(r.status, 201, r.text);
    return { token: r.json.token.id, slot: r.json.cvv_slot.id };
  };
  const slotLeft = async (slot: string): Promise<number | null> => {
    if (t.redis && (await t.redis.exists(`${CvvSlots.keyPrefix(t.merchantId)}${slot}`)) === 0) return null;
    const r = await t.request<{ uses_remaining: number }>('GET', `${t.vaultUrl}/v1/cvv-slots/${slot}`);
    return r.status === 200 ? r.json.uses_remaining : null;
  };
  const attemptsOf = async (id: string) =>
    (
      await t.request<{ data: { kind: string; connector: string; status: string }[] }>(
        'GET',
        api(`/v1/payment_intents/${id}/attempts`),
      )
    ).json.data.map((a) => [a.kind, a.connector, a.status]);
  const get = async (id: string) => (await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`))).json;
  const countPayments = async () =>
    (await t.request<{ data: unknown[] }>('GET', api('/v1/payment_intents?limit=100'))).json.data.length;

  test('an authorization whose answer is lost after the acquirer approved is unknown: no fallback, no second charge on retry, settled by the reconciler', async () => {
    const { token, slot } = await tokenize(acquirerTestCards.approve);
    const body = {
      amount: 2500,
      currency: 'usd',
      capture_method: 'manual',
      payment_method: token,
      payment_method_options: { card: { cvc_token: slot } },
      confirm: true,
    };
    const headers = { 'idempotency-key': `lost-${Date.now().toString(36)}` };
    const paymentsBefore = await countPayments();
    loseForwards = true;
    const lostBefore = lostForwards;
    const first = await t.request<Payment>('POST', api('/v1/payment_intents'), { body, headers });
    // The merchant's retry with the same key, while answers are still being lost.
    const retry = await t.request<Payment>('POST', api('/v1/payment_intents'), { body, headers });
    loseForwards = false;
    assert.equal(lostForwards - lostBefore, 1, 'exactly one forward reached the vault and lost its answer');
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.status, 'processing');
    assert.equal(retry.status, 200);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal(retry.json.id, first.json.id);
    assert.equal(await countPayments(), paymentsBefore + 1);
    // Not handed to the secondary connector: the primary may have charged the card (it did).
    assert.deepEqual(await attemptsOf(first.json.id), [['authorize', 'primary', 'unknown']]);
    // The vault saw the approval and destroyed the CVV then (PCI DSS 3.3.1.2), though the api never heard.
    assert.equal(await slotLeft(slot), null);

    await t.platform.services.reconciler?.runOnce(0);
    const settled = await get(first.json.id);
    assert.equal(settled.status, 'requires_capture');
    assert.equal(settled.amount_capturable, 2500);
    assert.deepEqual(await attemptsOf(first.json.id), [['authorize', 'primary', 'succeeded']]);
  });

  test('a capture and a refund whose answers are lost stay reserved until the reconciler learns they happened', async () => {
    const { token } = await tokenize(acquirerTestCards.approve);
    const made = await t.request<Payment>('POST', api('/v1/payment_intents'), {
      body: { amount: 3000, currency: 'usd', capture_method: 'manual', payment_method: token, confirm: true },
    });
    assert.equal(made.json.status, 'requires_capture', made.text);
    const id = made.json.id;

    loseForwards = true;
    const capture = await t.request<Payment>('POST', api(`/v1/payment_intents/${id}/capture`), {
      body: { amount_to_capture: 1000 },
    });
    loseForwards = false;
    assert.equal(capture.status, 200, capture.text);
    assert.equal(capture.json.amount_capturable, 2000, 'the captured amount stays reserved');
    assert.equal(capture.json.amount_received, 0);
    // The unknown capture's amount still counts against what is left to capture.
    const again = await t.request<Payment>('POST', api(`/v1/payment_intents/${id}/capture`), {
      body: { amount_to_capture: 2001 },
    });
    assert.equal(again.json.code, 'capture_amount_exceeded');
    // A final capture whose answer was lost does not hold the payment: another capture goes out, and
    // the processor, whose authorization that final capture did close, turns it down.
    const beside = await t.request<Payment>('POST', api(`/v1/payment_intents/${id}/capture`), {
      body: { amount_to_capture: 500 },
    });
    assert.equal(beside.json.code, 'payment_state_invalid', beside.text);
    assert.equal((await get(id)).amount_capturable, 2000, 'its reservation given back');
    await t.platform.services.reconciler?.runOnce(0);
    const captured = await get(id);
    assert.equal(captured.status, 'succeeded');
    assert.equal(captured.amount_received, 1000);

    loseForwards = true;
    const refund = await t.request<{ status: string; code?: string }>('POST', api('/v1/refunds'), {
      body: { payment_intent: id, amount: 400 },
    });
    loseForwards = false;
    assert.equal(refund.status, 200, refund.text);
    assert.equal(refund.json.status, 'pending');
    assert.equal((await get(id)).amount_refunded, 400, 'reserved while unknown');
    const over = await t.request<{ code?: string }>('POST', api('/v1/refunds'), {
      body: { payment_intent: id, amount: 700 },
    });
    assert.equal(over.json.code, 'refund_amount_exceeded', 'the unknown refund still counts');
    await t.platform.services.reconciler?.runOnce(0);
    assert.equal((await get(id)).amount_refunded, 400);
    assert.deepEqual(
      (await attemptsOf(id)).map(([kind, , status]) => [kind, status]),
      [
        ['authorize', 'succeeded'],
        ['capture', 'succeeded'],
        ['capture', 'declined'],
        ['refund', 'succeeded'],
      ],
    );
  });

  test('where the processor allows one capture, none goes out while the first one is unknown', async () => {
    const { token } = await tokenize(acquirerTestCards.approve);
    const made = await t.request<Payment>('POST', api('/v1/payment_intents'), {
      body: { amount: 1500, currency: 'chf', capture_method: 'manual', payment_method: token, confirm: true },
    });
    assert.equal(made.json.connector, 'one-capture', made.text);
    const id = made.json.id;
    loseForwards = true;
    const first = await t.request<Payment>('POST', api(`/v1/payment_intents/${id}/capture`), {
      body: { amount_to_capture: 1000 },
    });
    loseForwards = false;
    assert.equal(first.json.status, 'requires_capture', 'the first capture is not known to have happened');
    const second = await t.request<Payment & { field?: string }>(
      'POST',
      api(`/v1/payment_intents/${id}/capture`),
      { body: { amount_to_capture: 500 } },
    );
    assert.equal(second.status, 400, second.text);
    assert.equal(second.json.code, 'payment_state_invalid');
    assert.equal(second.json.field, 'final_capture');
    await t.platform.services.reconciler?.runOnce(0);
    const settled = await get(id);
    assert.equal(settled.status, 'succeeded');
    assert.equal(settled.amount_received, 1000);
  });

  test('a request the processor turns down (400) is no outage: 502 processor_refused, kept under its idempotency key', async () => {
    const { token, slot } = await tokenize(acquirerTestCards.approve);
    const body = {
      amount: 900,
      currency: 'nok',
      payment_method: token,
      payment_method_options: { card: { cvc_token: slot } },
      confirm: true,
    };
    const headers = { 'idempotency-key': `refused-${Date.now().toString(36)}` };
    const hits = lockedHits.length;
    const first = await t.request<Payment>('POST', api('/v1/payment_intents'), { body, headers });
    assert.equal(first.status, 502, first.text);
    assert.equal(first.json.code, 'processor_refused');
    assert.equal(await slotLeft(slot), 2, 'nothing authorized: the CVV kept');
    const again = await t.request<Payment>('POST', api('/v1/payment_intents'), { body, headers });
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.json.code, 'processor_refused');
    assert.equal(lockedHits.length, hits + 1, 'the refused request was not sent again');
  });

  test('a 402 from a processor is a card decline: no fallback, the CVV gone', async () => {
    const { token, slot } = await tokenize(acquirerTestCards.approve);
    const r = await t.request<Payment & { payment_intent?: string; error?: { decline_code?: string } }>(
      'POST',
      api('/v1/payment_intents'),
      {
        body: {
          amount: 900,
          currency: 'sek',
          payment_method: token,
          payment_method_options: { card: { cvc_token: slot } },
          confirm: true,
        },
      },
    );
    assert.equal(r.status, 402, r.text);
    assert.equal(r.json.code, 'card_declined');
    assert.equal(r.json.error?.decline_code, 'do_not_honor');
    assert.deepEqual(await attemptsOf(r.json.payment_intent as string), [
      ['authorize', 'locked', 'declined'],
    ]);
    assert.equal(await slotLeft(slot), null);
  });

  test('an outcome is applied once, whoever learns it: concurrent and late applications change nothing', async () => {
    const payments = t.platform.services.payments;
    assert.ok(payments);
    const { token } = await tokenize(acquirerTestCards.approve);
    const made = await t.request<Payment>('POST', api('/v1/payment_intents'), {
      body: { amount: 3000, currency: 'usd', capture_method: 'manual', payment_method: token, confirm: true },
    });
    const id = made.json.id;
    loseForwards = true;
    await t.request<Payment>('POST', api(`/v1/payment_intents/${id}/capture`), {
      body: { amount_to_capture: 1000 },
    });
    loseForwards = false;
    const [captureAttempt] = await t.adminSql<AttemptRow[]>`
      select * from payments.attempts where payment_id = ${id} and kind = 'capture'`;
    assert.equal(captureAttempt?.status, 'unknown');
    // Two replicas' reconcilers learn the same capture at once.
    const learned = { kind: 'succeeded', value: undefined } as const;
    await Promise.all([
      payments.applyCapture(captureAttempt as AttemptRow, learned),
      payments.applyCapture(captureAttempt as AttemptRow, learned),
    ]);
    const once = await get(id);
    assert.equal(once.amount_received, 1000, 'counted once');
    assert.equal(once.status, 'succeeded');
    const events = await t.adminSql`
      select 1 from webhooks.events where type = 'payment_intent.succeeded' and payload->'data'->'object'->>'id' = ${id}`;
    assert.equal(events.length, 1, 'one event');
    // A late approval of the authorization, long settled, does not move the payment back.
    const [authorization] = await t.adminSql<AttemptRow[]>`
      select * from payments.attempts where payment_id = ${id} and kind = 'authorize'`;
    const late = await payments.applyAuthorization(authorization as AttemptRow, {
      kind: 'succeeded',
      value: { processorId: 'auth_late', capturedAmount: 0 },
    });
    assert.equal(late.status, 'succeeded');
    const after = await get(id);
    assert.equal(after.status, 'succeeded');
    assert.equal(after.amount_received, 1000);
    assert.equal(after.amount_capturable, 0);
  });

  test('a void whose answer is lost leaves the payment as it was until the reconciler learns it happened', async () => {
    const { token } = await tokenize(acquirerTestCards.approve);
    const made = await t.request<Payment>('POST', api('/v1/payment_intents'), {
      body: { amount: 1200, currency: 'usd', capture_method: 'manual', payment_method: token, confirm: true },
    });
    const id = made.json.id;
    loseForwards = true;
    const cancel = await t.request<Payment>('POST', api(`/v1/payment_intents/${id}/cancel`), { body: {} });
    loseForwards = false;
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal(cancel.json.status, 'requires_capture');
    // Nothing else may happen to it meanwhile: the processor may already have released the money.
    const capture = await t.request<Payment>('POST', api(`/v1/payment_intents/${id}/capture`), { body: {} });
    assert.equal(capture.json.code, 'payment_in_progress');
    await t.platform.services.reconciler?.runOnce(0);
    assert.equal((await get(id)).status, 'canceled');
    assert.deepEqual(
      (await attemptsOf(id)).map(([kind, , status]) => [kind, status]),
      [
        ['authorize', 'succeeded'],
        ['void', 'succeeded'],
      ],
    );
  });

  test('a processor that refuses the request itself (401) is a failure, not a decline: the CVV is kept, the next connector is tried', async () => {
    const alone = await tokenize(acquirerTestCards.approve);
    const hits = lockedHits.length;
    const refused = await t.request<Payment & { error?: { type: string } }>(
      'POST',
      api('/v1/payment_intents'),
      {
        body: {
          amount: 900,
          currency: 'cad',
          payment_method: alone.token,
          payment_method_options: { card: { cvc_token: alone.slot } },
          confirm: true,
        },
      },
    );
    assert.equal(lockedHits.length, hits + 1, 'the request reached the refusing processor');
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json.code, 'processor_unavailable');
    assert.notEqual(refused.json.code, 'card_declined');
    // No authorization happened: the CVV stays for a retry (one use spent).
    assert.equal(await slotLeft(alone.slot), 2);
    const list = await t.request<{ data: Payment[] }>('GET', api('/v1/payment_intents?limit=1'));
    const refusedId = list.json.data[0]?.id as string;
    assert.equal(list.json.data[0]?.status, 'requires_confirmation');
    assert.deepEqual(await attemptsOf(refusedId), [['authorize', 'locked', 'failed']]);

    const fallback = await tokenize(acquirerTestCards.approve);
    const moved = await t.request<Payment>('POST', api('/v1/payment_intents'), {
      body: {
        amount: 900,
        currency: 'jpy',
        payment_method: fallback.token,
        payment_method_options: { card: { cvc_token: fallback.slot } },
        confirm: true,
      },
    });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.json.status, 'succeeded');
    assert.deepEqual(await attemptsOf(moved.json.id), [
      ['authorize', 'locked', 'failed'],
      ['authorize', 'primary', 'succeeded'],
    ]);
    assert.equal(await slotLeft(fallback.slot), null, 'gone after the approval');
  });
});
