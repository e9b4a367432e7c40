import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { acquirerDeclines, acquirerTestCards, allTestPans, testCvvs } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { findPans } from '../shared/pan-detect.ts';
import { CvvSlots } from '../vault/cvv-slots.ts';
import { verifyWebhookSignature } from '../webhooks/signature.ts';
import { allowedActions, type PaymentStatus, paymentActions } from './payment-status.ts';

interface Payment {
  id: string;
  status: PaymentStatus;
  amount: number;
  amount_capturable: number;
  amount_received: number;
  amount_refunded: number;
  connector: string | null;
  card: { brand: string; last4: string } | null;
  description?: string | null;
  metadata?: Record<string, string>;
  last_payment_error: { decline_code: string | null } | null;
  code?: string;
  field?: string;
  error?: { type: string; code: string; decline_code?: string; param?: string };
}

/**
 * Where a test holds a call: `pass()` (awaited by the call) marks it reached and waits until `open()`;
 * `reached` resolves once the call is there. Latches, not sleeps: a slow machine changes nothing.
 */
function gate() {
  let arrive: () => void = () => undefined;
  let open: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    reached,
    open: () => open(),
    pass: async () => {
      arrive();
      await opened;
    },
  };
}

async function deadPort(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return url;
}

for (const backend of backends()) {
  describe(`payments (${backend})`, () => {
    let t: TestPlatform;
    let dead: string;

    before(async () => {
      dead = await deadPort();
      t = await startTestPlatform(backend, 'payments', {
        roles: ['vault', 'api', 'acquirer'],
        env: {
          // Well above an ordinary answer on a loaded CI machine (at 500 ms a capture was once taken for a
          // timeout there), well below the test acquirer's hang.
          CARDHOLD_FORWARD_TIMEOUT_MS: '2500',
          CARDHOLD_ACQUIRER_HANG_MS: '5000',
          CARDHOLD_FORWARD_ALLOWLIST: dead,
          // Three connectors: one that cannot be reached, then the test acquirer under two names.
          CARDHOLD_CONNECTORS: JSON.stringify([
            { name: 'unreachable', type: 'test-acquirer', url: dead },
            { name: 'primary', type: 'test-acquirer' },
            { name: 'secondary', type: 'test-acquirer' },
            // A contract that allows one capture per authorization.
            { name: 'one-capture', type: 'test-acquirer', capabilities: { multiple_captures: false } },
          ]),
          CARDHOLD_ROUTING_RULES: JSON.stringify([
            { when: { currency: ['EUR'] }, connectors: ['unreachable', 'primary'] },
            { when: { currency: ['GBP'] }, connectors: ['primary', 'secondary'] },
            { when: { currency: ['CHF'] }, connectors: ['one-capture'] },
            { when: {}, connectors: ['primary'] },
          ]),
          CARDHOLD_RECONCILE_INTERVAL_SECONDS: '3600',
          CARDHOLD_WEBHOOK_POLL_INTERVAL_MS: '50',
        },
      });
    });
    after(async () => {
      await t?.close();
    });

    const api = (path: string) => `${t.apiUrl}${path}`;
    const tokenize = async (pan: string, options: { cvv?: boolean; maxUses?: number } = {}) => {
      const r = await t.request<{ token: { id: string }; cvv_slot: { id: string } | null }>(
        'POST',
        `${t.vaultUrl}/v1/tokens`,
        {
          body: {
            pan,
            exp_month: 12,
            exp_year: futureYear,
            ...(options.cvv === false ? {} : { cvv: testCvvs.three }),
            ...(options.maxUses ? { cvv_options: { max_uses: options.maxUses } } : {}),
          },
        },
      );
      assert.equal(r.status, 201);
      return { token: r.json.token.id, slot: r.json.cvv_slot?.id };
    };
    const pay = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      t.request<Payment>('POST', api('/v1/payment_intents'), { body, headers });
    const act = (id: string, action: string, body: Record<string, unknown> = {}) =>
      t.request<Payment>('POST', api(`/v1/payment_intents/${id}/${action}`), { body });
    const slotLeft = async (slot: string): Promise<number | null> => {
      if (t.redis) {
        const key = `${CvvSlots.keyPrefix(t.merchantId)}${slot}`;
        if ((await t.redis.exists(key)) === 0) return null;
      }
      const r = await t.request<{ uses_remaining: number }>('GET', `${t.vaultUrl}/v1/cvv-slots/${slot}`);
      return r.status === 200 ? r.json.uses_remaining : null;
    };
    const confirmWith = async (pan: string, extra: Record<string, unknown> = {}) => {
      const { token, slot } = await tokenize(pan);
      const r = await pay({
        amount: 2000,
        currency: 'usd',
        payment_method: token,
        payment_method_options: { card: { cvc_token: slot } },
        confirm: true,
        ...extra,
      });
      return { r, token, slot: slot as string };
    };

    test('approve: authorized and captured at once; the CVV slot is gone', async () => {
      const { r, slot } = await confirmWith(acquirerTestCards.approve);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.status, 'succeeded');
      assert.equal(r.json.amount_received, 2000);
      assert.equal(r.json.connector, 'primary');
      assert.deepEqual(r.json.card, { brand: 'visa', last4: acquirerTestCards.approve.slice(-4) });
      assert.equal(await slotLeft(slot), null);
    });

    for (const [card, declineCode] of acquirerDeclines) {
      test(`${declineCode}: 402 with Stripe's card error; requires a new payment method; the CVV slot is gone`, async () => {
        const { r, slot } = await confirmWith(acquirerTestCards[card]);
        assert.equal(r.status, 402);
        assert.equal(r.json.code, 'card_declined');
        assert.equal(r.json.error?.type, 'card_error');
        assert.equal(r.json.error?.decline_code, declineCode);
        const id = (r.json as unknown as { payment_intent: string }).payment_intent;
        const after = await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`));
        assert.equal(after.json.status, 'requires_payment_method');
        assert.equal(after.json.last_payment_error?.decline_code, declineCode);
        assert.equal(await slotLeft(slot), null);
      });
    }

    test('timeout: the payment is processing and the CVV slot is still usable; the reconciler settles it', async () => {
      const { r, slot } = await confirmWith(acquirerTestCards.timeout);
      assert.equal(r.status, 200);
      assert.equal(r.json.status, 'processing');
      assert.equal(await slotLeft(slot), 2, 'one use spent, the slot kept for a retry');
      const attempts = await t.request<{ data: { status: string }[] }>(
        'GET',
        api(`/v1/payment_intents/${r.json.id}/attempts`),
      );
      assert.deepEqual(
        attempts.json.data.map((a) => a.status),
        ['unknown'],
      );
      // The acquirer never recorded it: the reconciler finds nothing and the payment can be confirmed again.
      await t.platform.services.reconciler?.runOnce(0);
      const settled = await t.request<Payment>('GET', api(`/v1/payment_intents/${r.json.id}`));
      assert.equal(settled.json.status, 'requires_confirmation');
      assert.equal(await slotLeft(slot), 2);
      // And it is used: confirming again sends the CVV once more (a second timeout spends a second use).
      const again = await act(r.json.id, 'confirm');
      assert.equal(again.status, 200, again.text);
      assert.equal(again.json.status, 'processing');
      assert.equal(await slotLeft(slot), 1);
    });

    test('a CVV slot is gone after its last use, even without an answer', async () => {
      const { token, slot } = await tokenize(acquirerTestCards.timeout, { maxUses: 1 });
      const r = await pay({
        amount: 500,
        currency: 'usd',
        payment_method: token,
        payment_method_options: { card: { cvc_token: slot } },
        confirm: true,
      });
      assert.equal(r.json.status, 'processing');
      assert.equal(await slotLeft(slot as string), null);
    });

    test('unknown: the answer is lost after the acquirer approved; the reconciler settles it and destroys the CVV', async () => {
      const { r, slot } = await confirmWith(acquirerTestCards.unknown, { capture_method: 'manual' });
      assert.equal(r.status, 200);
      assert.equal(r.json.status, 'processing');
      assert.equal(await slotLeft(slot), 2);
      const settled = await t.platform.services.reconciler?.runOnce(0);
      assert.ok((settled ?? 0) >= 1);
      const after = await t.request<Payment>('GET', api(`/v1/payment_intents/${r.json.id}`));
      assert.equal(after.json.status, 'requires_capture');
      assert.equal(after.json.amount_capturable, 2000);
      assert.equal(await slotLeft(slot), null);
      const captured = await act(r.json.id, 'capture');
      assert.equal(captured.json.status, 'succeeded');
    });

    test('an amount equal to the CVV: the scrubbed answer is read as unknown, never as an amount, and the reconciler settles it', async () => {
      // The vault removes the CVV it sent wherever it stands as a value, so the acquirer's
      // captured_amount of 739 comes back as "[REDACTED]".
      const { r, slot } = await confirmWith(acquirerTestCards.approve, { amount: Number(testCvvs.three) });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.status, 'processing');
      assert.equal(await slotLeft(slot), null, 'the answer came: the CVV is gone');
      await t.platform.services.reconciler?.runOnce(0);
      const after = await t.request<Payment>('GET', api(`/v1/payment_intents/${r.json.id}`));
      assert.equal(after.json.status, 'succeeded');
      assert.equal(after.json.amount_received, Number(testCvvs.three));
    });

    test('server error: 503, nothing charged, the payment can be confirmed again, the CVV is kept', async () => {
      const { r, slot } = await confirmWith(acquirerTestCards.serverError);
      assert.equal(r.status, 503);
      assert.equal(r.json.code, 'processor_unavailable');
      assert.equal(r.json.error?.type, 'api_error');
      const list = await t.request<{ data: Payment[] }>('GET', api('/v1/payment_intents?limit=1'));
      assert.equal(list.json.data[0]?.status, 'requires_confirmation');
      assert.equal(await slotLeft(slot), 2);
    });

    test('fallback: an unreachable connector hands over to the next, which approves', async () => {
      const { r } = await confirmWith(acquirerTestCards.approve, { currency: 'eur' });
      assert.equal(r.status, 200);
      assert.equal(r.json.status, 'succeeded');
      assert.equal(r.json.connector, 'primary');
      const attempts = await t.request<{ data: { connector: string; status: string }[] }>(
        'GET',
        api(`/v1/payment_intents/${r.json.id}/attempts`),
      );
      assert.deepEqual(
        attempts.json.data.map((a) => [a.connector, a.status]),
        [
          ['unreachable', 'failed'],
          ['primary', 'succeeded'],
        ],
      );
    });

    test('no fallback after a decline or an unknown outcome; a retriable 503 moves on', async () => {
      const attemptsOf = async (id: string) =>
        (
          await t.request<{ data: { connector: string; status: string }[] }>(
            'GET',
            api(`/v1/payment_intents/${id}/attempts`),
          )
        ).json.data.map((a) => [a.connector, a.status]);
      const declined = await confirmWith(acquirerTestCards.genericDecline, { currency: 'gbp' });
      const declinedId = (declined.r.json as unknown as { payment_intent: string }).payment_intent;
      assert.deepEqual(await attemptsOf(declinedId), [['primary', 'declined']]);
      const unknown = await confirmWith(acquirerTestCards.unknown, { currency: 'gbp' });
      assert.deepEqual(await attemptsOf(unknown.r.json.id), [['primary', 'unknown']]);
      await t.platform.services.reconciler?.runOnce(0);
      const down = await confirmWith(acquirerTestCards.serverError, { currency: 'gbp' });
      assert.equal(down.r.status, 503);
      const list = await t.request<{ data: Payment[] }>('GET', api('/v1/payment_intents?limit=1'));
      assert.deepEqual(await attemptsOf(list.json.data[0]?.id as string), [
        ['primary', 'failed'],
        ['secondary', 'failed'],
      ]);
    });

    test('50 concurrent requests with one idempotency key create exactly one payment', async () => {
      const { token } = await tokenize(acquirerTestCards.approve, { cvv: false });
      // Base 36: a 13-digit millisecond count can pass the Luhn check, and metadata refuses card numbers.
      const key = `idem-${Date.now().toString(36)}`;
      const body = { amount: 777, currency: 'usd', payment_method: token, metadata: { order: key } };
      const replies = await Promise.all(
        Array.from({ length: 50 }, () => pay(body, { 'idempotency-key': key })),
      );
      const ids = new Set(replies.filter((r) => r.status === 200).map((r) => r.json.id));
      assert.equal(
        ids.size,
        1,
        `statuses ${replies.map((r) => `${r.status}:${r.json.code ?? ''}`).join(' ')}`,
      );
      for (const r of replies) assert.ok(r.status === 200 || r.status === 409, `status ${r.status}`);
      const rows = await t.adminSql`
        select count(*)::int as n from payments.payment_intents where metadata->>'order' = ${key}`;
      assert.equal(rows[0]?.['n'], 1);
      const replay = await pay(body, { 'idempotency-key': key });
      assert.equal(replay.status, 200);
      assert.equal(replay.json.id, [...ids][0]);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      const other = await pay({ ...body, amount: 778 }, { 'idempotency-key': key });
      assert.equal(other.status, 400);
      assert.equal(other.json.code, 'idempotency_key_reused');
      assert.equal(other.json.error?.type, 'idempotency_error');
    });

    test('a declined confirmation is replayed under its idempotency key; a 503 frees the key unless the request created the payment', async () => {
      const { token, slot } = await tokenize(acquirerTestCards.insufficientFunds);
      const key = `decl-${Date.now()}`;
      const body = {
        amount: 100,
        currency: 'usd',
        payment_method: token,
        payment_method_options: { card: { cvc_token: slot } },
        confirm: true,
      };
      const first = await pay(body, { 'idempotency-key': key });
      const second = await pay(body, { 'idempotency-key': key });
      assert.equal(first.status, 402);
      assert.equal(second.status, 402);
      assert.equal(second.text, first.text);
      const down = await tokenize(acquirerTestCards.serverError, { cvv: false });
      // Create and confirm in one: the payment was created before the processor failed, so the answer
      // names it and is stored; a retry replays it instead of creating a second payment.
      const key2 = `down-${Date.now()}`;
      const downBody = { amount: 100, currency: 'usd', payment_method: down.token, confirm: true };
      const failed = await pay(downBody, { 'idempotency-key': key2 });
      assert.equal(failed.status, 503);
      const created = (failed.json as unknown as { payment_intent: string }).payment_intent;
      assert.match(created, /^pi_/);
      const replayed = await pay(downBody, { 'idempotency-key': key2 });
      assert.equal(replayed.headers.get('idempotent-replayed'), 'true');
      assert.equal(replayed.text, failed.text);
      const made = await t.adminSql<{ n: number }[]>`
        select count(*)::int as n from payments.payment_intents where payment_method = ${down.token}`;
      assert.equal(made[0]?.n, 1, 'one payment, not one per retry');
      // Confirming that payment again: nothing is written when the processor is down, so the key is
      // freed and the retry runs.
      const confirm = () =>
        t.request<Payment>('POST', api(`/v1/payment_intents/${created}/confirm`), {
          body: {},
          headers: { 'idempotency-key': `${key2}-confirm` },
        });
      assert.equal((await confirm()).status, 503);
      const again = await confirm();
      assert.equal(again.status, 503, 'ran again rather than replayed');
      assert.equal(again.headers.get('idempotent-replayed'), null);
    });

    // Every status against every action, each allowed transition checked for where it leads.
    const reach: Record<Exclude<PaymentStatus, 'requires_action'>, () => Promise<string>> = {
      requires_payment_method: async () => (await pay({ amount: 1000, currency: 'usd' })).json.id,
      requires_confirmation: async () => {
        const { token } = await tokenize(acquirerTestCards.approve, { cvv: false });
        return (await pay({ amount: 1000, currency: 'usd', payment_method: token })).json.id;
      },
      processing: async () => (await confirmWith(acquirerTestCards.timeout)).r.json.id,
      requires_capture: async () =>
        (await confirmWith(acquirerTestCards.approve, { capture_method: 'manual', amount: 1000 })).r.json.id,
      succeeded: async () => (await confirmWith(acquirerTestCards.approve, { amount: 1000 })).r.json.id,
      canceled: async () => {
        const id = (await pay({ amount: 1000, currency: 'usd' })).json.id;
        await act(id, 'cancel');
        return id;
      },
    };
    const leadsTo: Record<string, PaymentStatus> = {
      'requires_payment_method confirm': 'succeeded',
      'requires_payment_method cancel': 'canceled',
      'requires_confirmation confirm': 'succeeded',
      'requires_confirmation cancel': 'canceled',
      'requires_capture capture': 'succeeded',
      'requires_capture cancel': 'canceled',
    };
    for (const [status, make] of Object.entries(reach) as [PaymentStatus, () => Promise<string>][]) {
      for (const action of paymentActions.filter((a) => a !== 'set_payment_method')) {
        const allowed = allowedActions[status].includes(action);
        test(`${status} + ${action}: ${allowed ? 'allowed' : 'refused'}`, async () => {
          const id = await make();
          const before = await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`));
          assert.equal(before.json.status, status);
          let r: Awaited<ReturnType<typeof act>>;
          if (action === 'refund') {
            r = (await t.request('POST', api('/v1/refunds'), {
              body: { payment_intent: id, amount: 400 },
            })) as never;
          } else if (action === 'confirm' && status === 'requires_payment_method') {
            const { token } = await tokenize(acquirerTestCards.approve, { cvv: false });
            r = await act(id, 'confirm', { payment_method: token });
          } else {
            r = await act(id, action);
          }
          if (!allowed) {
            assert.equal(r.status, 400, r.text);
            assert.equal(r.json.code, 'payment_state_invalid');
            assert.equal(r.json.error?.code, 'payment_intent_unexpected_state');
            const unchanged = await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`));
            assert.equal(unchanged.json.status, status, 'nothing changed');
            return;
          }
          assert.equal(r.status, 200, r.text);
          const after = await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`));
          if (action === 'refund') {
            assert.equal(after.json.status, 'succeeded');
            assert.equal(after.json.amount_refunded, 400);
          } else {
            assert.equal(after.json.status, leadsTo[`${status} ${action}`]);
          }
        });
      }
    }

    // The illegal moves the issue names, each from a payment that allows everything else, in one table.
    const illegal: {
      name: string;
      setup: () => Promise<string>;
      move: (id: string) => ReturnType<typeof act>;
      code: string;
      param?: string;
    }[] = [
      {
        name: 'capture after cancel',
        setup: async () => {
          const id = (await confirmWith(acquirerTestCards.approve, { capture_method: 'manual' })).r.json.id;
          assert.equal((await act(id, 'cancel')).json.status, 'canceled');
          return id;
        },
        move: (id) => act(id, 'capture'),
        code: 'payment_state_invalid',
      },
      {
        name: 'refund above what was captured',
        setup: async () => (await confirmWith(acquirerTestCards.approve, { amount: 1000 })).r.json.id,
        move: (id) =>
          t.request<Payment>('POST', api('/v1/refunds'), { body: { payment_intent: id, amount: 1001 } }),
        code: 'refund_amount_exceeded',
        param: 'amount',
      },
      {
        name: 'capture above what was authorized',
        setup: async () =>
          (await confirmWith(acquirerTestCards.approve, { capture_method: 'manual', amount: 1000 })).r.json
            .id,
        move: (id) => act(id, 'capture', { amount_to_capture: 1001 }),
        code: 'capture_amount_exceeded',
        param: 'amount_to_capture',
      },
      {
        name: 'a second capture where the processor allows one (announced by final_capture=false)',
        setup: async () =>
          (await confirmWith(acquirerTestCards.approve, { capture_method: 'manual', currency: 'chf' })).r.json
            .id,
        move: (id) => act(id, 'capture', { amount_to_capture: 500, final_capture: false }),
        code: 'payment_state_invalid',
        param: 'final_capture',
      },
    ];
    for (const { name, setup, move, code, param } of illegal) {
      test(`refused, with nothing changed: ${name}`, async () => {
        const id = await setup();
        const before = await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`));
        const r = await move(id);
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.code, code);
        if (param) assert.equal(r.json.error?.param, param);
        const after = await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`));
        assert.deepEqual(after.json, before.json, 'the payment is as it was');
      });
    }

    test('captures: partial and multiple up to the authorization, never above; none after the final one', async () => {
      const id = (await confirmWith(acquirerTestCards.approve, { capture_method: 'manual', amount: 1000 })).r
        .json.id;
      const above = await act(id, 'capture', { amount_to_capture: 1001 });
      assert.equal(above.status, 400);
      assert.equal(above.json.code, 'capture_amount_exceeded');
      assert.equal(above.json.error?.param, 'amount_to_capture');
      const first = await act(id, 'capture', { amount_to_capture: 300, final_capture: false });
      assert.equal(first.json.status, 'requires_capture');
      assert.equal(first.json.amount_capturable, 700);
      const second = await act(id, 'capture', { amount_to_capture: 200 });
      assert.equal(second.json.status, 'succeeded');
      assert.equal(second.json.amount_received, 500);
      assert.equal(second.json.amount_capturable, 0);
      const third = await act(id, 'capture', { amount_to_capture: 100 });
      assert.equal(third.json.code, 'payment_state_invalid');
      // The final capture closed the authorization at the processor: the 500 never captured is released
      // to the cardholder, not held until the authorization expires.
      const [row] = await t.adminSql<{ connector_payment_id: string }[]>`
        select connector_payment_id from payments.payment_intents where id = ${id}`;
      const atProcessor = await t.request<{
        state: string;
        captured_amount: number;
        released_amount: number;
      }>('GET', `${t.acquirerUrl}/v1/authorizations/${row?.connector_payment_id}`, {
        key: null,
        dispatcher: await t.serviceAgent('vault'),
      });
      assert.equal(atProcessor.status, 200, atProcessor.text);
      assert.deepEqual(
        [atProcessor.json.state, atProcessor.json.captured_amount, atProcessor.json.released_amount],
        ['captured', 500, 500],
      );
    });

    test('a final capture beside one in flight leaves the authorization open at the processor; none starts beside a final one', async () => {
      const paid = await confirmWith(acquirerTestCards.approve, { capture_method: 'manual', amount: 1000 });
      const id = paid.r.json.id;
      const connector = t.platform.services.payments?.connector(paid.r.json.connector as string);
      assert.ok(connector);
      const capture = connector.capture;
      const sentFinal: boolean[] = [];
      // The capture of 400 is held after its reservation, before it reaches the processor.
      const inFlight = gate();
      connector.capture = async (input) => {
        sentFinal.push(input.final);
        if (input.amount === 400) {
          await inFlight.pass();
        }
        return capture.call(connector, input);
      };
      try {
        const slow = act(id, 'capture', { amount_to_capture: 400, final_capture: false });
        await inFlight.reached;
        let rest: Awaited<ReturnType<typeof act>>;
        try {
          // Final, but the 400 still needs the authorization: the processor is not told to release it.
          rest = await act(id, 'capture', { amount_to_capture: 600 });
        } finally {
          inFlight.open();
        }
        assert.equal(rest.status, 200, rest.text);
        assert.equal((await slow).status, 200);
        assert.deepEqual(sentFinal, [false, false]);
        const after = await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`));
        assert.deepEqual(
          [after.json.status, after.json.amount_received, after.json.amount_capturable],
          ['succeeded', 1000, 0],
          'both captures taken',
        );

        // A final capture in flight: nothing starts beside it.
        const other = await confirmWith(acquirerTestCards.approve, {
          capture_method: 'manual',
          amount: 1000,
        });
        const finalInFlight = gate();
        connector.capture = async (input) => {
          if (input.amount === 300) {
            await finalInFlight.pass();
          }
          return capture.call(connector, input);
        };
        const closing = act(other.r.json.id, 'capture', { amount_to_capture: 300 });
        await finalInFlight.reached;
        try {
          const beside = await act(other.r.json.id, 'capture', {
            amount_to_capture: 100,
            final_capture: false,
          });
          assert.deepEqual([beside.status, beside.json.code], [400, 'payment_in_progress']);
        } finally {
          finalInFlight.open();
        }
        assert.equal((await closing).json.status, 'succeeded');
      } finally {
        connector.capture = capture;
      }
    });

    test('a capture that fails while another takes the rest gives its amount back to a payment still capturable', async () => {
      const paid = await confirmWith(acquirerTestCards.approve, { capture_method: 'manual', amount: 1000 });
      const id = paid.r.json.id;
      const connector = t.platform.services.payments?.connector(paid.r.json.connector as string);
      assert.ok(connector);
      const capture = connector.capture;
      // The capture of 400 reaches its processor call (its amount reserved) and waits there until the
      // other capture is done; then it fails without reaching the processor.
      const inFlight = gate();
      connector.capture = async (input) => {
        if (input.amount !== 400) return capture.call(connector, input);
        await inFlight.pass();
        return { kind: 'failed', code: 'processor_unreachable' };
      };
      try {
        const slow = act(id, 'capture', { amount_to_capture: 400, final_capture: false });
        await inFlight.reached;
        try {
          const other = await act(id, 'capture', { amount_to_capture: 600, final_capture: false });
          assert.equal(other.status, 200, other.text);
          assert.equal(other.json.amount_capturable, 0, 'the rest is reserved by the capture in flight');
          assert.equal(other.json.status, 'requires_capture', 'not done while a capture is in flight');
        } finally {
          inFlight.open();
        }
        assert.equal((await slow).json.code, 'processor_unavailable');
      } finally {
        connector.capture = capture;
      }
      const after = await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`));
      assert.deepEqual(
        [after.json.status, after.json.amount_received, after.json.amount_capturable],
        ['requires_capture', 600, 400],
      );
      const again = await act(id, 'capture', { amount_to_capture: 400 });
      assert.deepEqual([again.json.status, again.json.amount_received], ['succeeded', 1000]);
      const events = await t.adminSql<{ type: string }[]>`
        select type from webhooks.events where payload->'data'->'object'->>'id' = ${id} and type = 'payment_intent.succeeded'`;
      assert.equal(events.length, 1, 'one succeeded event, at the end');
    });

    test('a capture or cancel sent with no body at all works as with an empty one', async () => {
      const id = (await confirmWith(acquirerTestCards.approve, { capture_method: 'manual', amount: 1000 })).r
        .json.id;
      const captured = await t.request<Payment>('POST', api(`/v1/payment_intents/${id}/capture`));
      assert.equal(captured.status, 200, captured.text);
      assert.equal(captured.json.status, 'succeeded');
      const other = (await pay({ amount: 500, currency: 'usd' })).json.id;
      const canceled = await t.request<Payment>('POST', api(`/v1/payment_intents/${other}/cancel`));
      assert.equal(canceled.status, 200, canceled.text);
      assert.equal(canceled.json.status, 'canceled');
    });

    test('racing full captures: one wins, the others are told a capture is in flight; a refund of 0 is an invalid amount', async () => {
      const id = (await confirmWith(acquirerTestCards.approve, { capture_method: 'manual', amount: 1000 })).r
        .json.id;
      const all = await Promise.all(Array.from({ length: 6 }, () => act(id, 'capture')));
      const outcomes = all.map((r) => (r.status === 200 ? 'captured' : `${r.status} ${r.json.code}`));
      assert.equal(outcomes.filter((o) => o === 'captured').length, 1, outcomes.join(', '));
      for (const o of outcomes.filter((o) => o !== 'captured')) {
        // Stripe's conventions: a request that cannot be carried out now is a 400 (code lock_timeout).
        assert.ok(['400 payment_in_progress', '400 payment_state_invalid'].includes(o), o);
      }
      for (const amount of [0, -5]) {
        const r = await t.request<{ code?: string; field?: string }>('POST', api('/v1/refunds'), {
          body: { payment_intent: id, amount },
        });
        assert.deepEqual(
          [r.status, r.json.code, r.json.field],
          [400, 'amount_invalid', 'amount'],
          `${amount}`,
        );
      }
    });

    test('form bodies: prototype names are keys like others or refused, never dropped; limits refuse, never cut', async () => {
      const form = (body: string) =>
        t.request<Payment & { code?: string; field?: string }>('POST', api('/v1/payment_intents'), {
          rawBody: body,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
      const kept = await form('amount=100&currency=usd&metadata[constructor]=x&metadata[toString]=y');
      assert.equal(kept.status, 200, kept.text);
      assert.deepEqual((kept.json as unknown as { metadata: unknown }).metadata, {
        constructor: 'x',
        toString: 'y',
      });
      for (const body of [
        'amount=100&currency=usd&metadata[__proto__][x]=1',
        'amount=100&currency=usd&metadata%5B__proto__%5D=1',
        `amount=100&currency=usd${'&'.repeat(1000)}&confirm=true`,
        'amount=100&currency=usd&metadata[a][b][c][d][e][f]=1',
      ]) {
        const r = await form(body);
        assert.deepEqual(
          [r.status, r.json.code, r.json.field],
          [400, 'request_invalid', 'body'],
          body.slice(0, 60),
        );
      }
      // A metadata key is at most 40 characters, in JSON and in forms.
      const long = 'k'.repeat(41);
      assert.equal((await pay({ amount: 100, currency: 'usd', metadata: { [long]: 'v' } })).status, 400);
      assert.equal((await pay({ amount: 100, currency: 'usd', metadata: { '': 'v' } })).status, 400);
      assert.equal((await form(`amount=100&currency=usd&metadata[${long}]=v`)).status, 400);
    });

    test('after a non-final capture the captured part can be refunded, never more; the rest stays capturable', async () => {
      const id = (await confirmWith(acquirerTestCards.approve, { capture_method: 'manual', amount: 1000 })).r
        .json.id;
      const nothingYet = await t.request<{ code?: string }>('POST', api('/v1/refunds'), {
        body: { payment_intent: id, amount: 100 },
      });
      assert.equal(nothingYet.json.code, 'payment_state_invalid', 'nothing captured, nothing to refund');
      const part = await act(id, 'capture', { amount_to_capture: 300, final_capture: false });
      assert.equal(part.json.status, 'requires_capture');
      const over = await t.request<{ code?: string }>('POST', api('/v1/refunds'), {
        body: { payment_intent: id, amount: 301 },
      });
      assert.equal(over.json.code, 'refund_amount_exceeded');
      const refund = await t.request<{ status: string }>('POST', api('/v1/refunds'), {
        body: { payment_intent: id, amount: 200 },
      });
      assert.equal(refund.status, 200, refund.text);
      assert.equal(refund.json.status, 'succeeded');
      const after = await t.request<Payment>('GET', api(`/v1/payment_intents/${id}`));
      assert.equal(after.json.status, 'requires_capture');
      assert.equal(after.json.amount_refunded, 200);
      assert.equal(after.json.amount_capturable, 700);
      const last = await act(id, 'capture', { amount_to_capture: 700 });
      assert.equal(last.json.status, 'succeeded');
      assert.equal(last.json.amount_received, 1000);
    });

    test('a declined payment method is dropped: confirming again needs a new one, and charges only that', async () => {
      const declined = await confirmWith(acquirerTestCards.genericDecline);
      const id = (declined.r.json as unknown as { payment_intent: string }).payment_intent;
      const after = await t.request<Payment & { payment_method: string | null }>(
        'GET',
        api(`/v1/payment_intents/${id}`),
      );
      assert.equal(after.json.status, 'requires_payment_method');
      assert.equal(after.json.payment_method, null);
      const again = await act(id, 'confirm');
      assert.equal(again.status, 400, again.text);
      assert.equal(again.json.code, 'payment_state_invalid');
      assert.equal(again.json.field, 'payment_method');
      const attempts = async () =>
        (await t.request<{ data: unknown[] }>('GET', api(`/v1/payment_intents/${id}/attempts`))).json.data
          .length;
      assert.equal(await attempts(), 1, 'the declined card was not sent again');
      const { token } = await tokenize(acquirerTestCards.approve, { cvv: false });
      const paid = await act(id, 'confirm', { payment_method: token });
      assert.equal(paid.json.status, 'succeeded');
      assert.equal(await attempts(), 2);
    });

    test('confirm=true without a payment method is refused before anything is written', async () => {
      const count = async () =>
        (await t.adminSql<{ n: number }[]>`select count(*)::int as n from payments.payment_intents`)[0]?.n;
      const before = await count();
      const r = await pay({ amount: 500, currency: 'usd', confirm: true });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.code, 'request_invalid');
      assert.equal(r.json.field, 'payment_method');
      assert.equal(await count(), before);
    });

    test('refunds: partial and multiple up to the captured amount, never above; capture after cancel refused', async () => {
      const id = (await confirmWith(acquirerTestCards.approve, { amount: 1000 })).r.json.id;
      const refund = (amount?: number) =>
        t.request<{ id: string; status: string; amount: number; code?: string }>('POST', api('/v1/refunds'), {
          body: { payment_intent: id, ...(amount ? { amount } : {}) },
        });
      assert.equal((await refund(600)).json.status, 'succeeded');
      const over = await refund(401);
      assert.equal(over.status, 400);
      assert.equal(over.json.code, 'refund_amount_exceeded');
      const rest = await refund();
      assert.equal(rest.json.amount, 400);
      assert.equal((await refund(1)).json.code, 'refund_amount_exceeded');
      const listed = await t.request<{ data: { id: string }[] }>(
        'GET',
        api(`/v1/refunds?payment_intent=${id}`),
      );
      assert.equal(listed.json.data.length, 2);
      const got = await t.request<{ payment_intent: string }>('GET', api(`/v1/refunds/${rest.json.id}`));
      assert.equal(got.json.payment_intent, id);

      const held = (await confirmWith(acquirerTestCards.approve, { capture_method: 'manual' })).r.json.id;
      assert.equal((await act(held, 'cancel')).json.status, 'canceled');
      const late = await act(held, 'capture');
      assert.equal(late.json.code, 'payment_state_invalid');
    });

    test('control characters in a description or metadata are refused as bad input, never a 500', async () => {
      for (const [body, field] of [
        [{ amount: 500, currency: 'usd', description: 'a\u0000b' }, 'description'],
        [{ amount: 500, currency: 'usd', metadata: { note: 'a\u0000b' } }, 'metadata.note'],
        // JSON writes \u0001 for it, whose digits would join a card number's in the webhook's text.
        [{ amount: 500, currency: 'usd', metadata: { order: '\u0001424242426' } }, 'metadata.order'],
        [{ amount: 500, currency: 'usd', metadata: { 'a\u0000': '1' } }, 'metadata.*'],
      ] as const) {
        const r = await pay(body as Record<string, unknown>);
        assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
        assert.equal(r.json.code, 'request_invalid');
        assert.equal(r.json.field, field);
      }
    });

    test('amounts in minor units with ISO 4217 exponents; unknown currencies and card data refused', async () => {
      for (const currency of ['jpy', 'usd', 'kwd']) {
        const r = await pay({ amount: 1050, currency });
        assert.equal(r.status, 200, currency);
        assert.equal(r.json.amount, 1050);
      }
      const bad: Array<[Record<string, unknown>, string, string]> = [
        [{ amount: 100, currency: 'xyz' }, 'currency_invalid', 'currency'],
        [{ amount: 0, currency: 'usd' }, 'amount_invalid', 'amount'],
        [
          { amount: 100, currency: 'usd', description: `card ${acquirerTestCards.approve}` },
          'request_invalid',
          'description',
        ],
        [
          { amount: 100, currency: 'usd', metadata: { note: acquirerTestCards.approve } },
          'request_invalid',
          'metadata.note',
        ],
        [{ amount: '100', currency: 'usd' }, 'request_invalid', 'amount'],
        [{ amount: 100, currency: 'usd', unknown: 1 }, 'request_invalid', 'unknown'],
      ];
      for (const [body, code, field] of bad) {
        const r = await pay(body);
        assert.equal(r.status, 400, JSON.stringify({ code, field }));
        assert.equal(r.json.code, code);
        assert.equal(r.json.field, field);
        assert.ok(!r.text.includes(acquirerTestCards.approve), 'the card number is not echoed');
      }
      // An order id that is a UUID is kept, though its digit groups join to a Luhn-valid run.
      const orderId = '54bdea3d-8e93-47b9-9184-40544056586e';
      const kept = await pay({
        amount: 100,
        currency: 'usd',
        description: `order ${orderId}`,
        metadata: { order_id: orderId },
      });
      assert.equal(kept.status, 200, kept.text);
      assert.equal(kept.json.description, `order ${orderId}`);
      assert.deepEqual(kept.json.metadata, { order_id: orderId });
    });

    test('a token of another merchant, or none, is refused; another merchant cannot see the payment', async () => {
      const missing = await pay({
        amount: 100,
        currency: 'usd',
        payment_method: `tok_${'A'.repeat(22)}`,
        confirm: true,
      });
      assert.equal(missing.status, 400);
      assert.equal(missing.json.code, 'payment_method_invalid');
      const created = await t.request<{ id: string; api_key: { secret: string } }>(
        'POST',
        api('/v1/merchants'),
        {
          key: t.adminToken,
          body: { name: 'Other shop' },
        },
      );
      assert.equal(created.status, 201, created.text);
      const otherKey = created.json.api_key.secret;
      const mine = (await pay({ amount: 100, currency: 'usd' })).json.id;
      const seen = await t.request<Payment>('GET', api(`/v1/payment_intents/${mine}`), { key: otherKey });
      const none = await t.request<Payment>('GET', api(`/v1/payment_intents/pi_${'B'.repeat(22)}`), {
        key: otherKey,
      });
      assert.equal(seen.status, 404);
      assert.equal(seen.json.code, none.json.code);
      const list = await t.request<{ data: Payment[] }>('GET', api('/v1/payment_intents'), { key: otherKey });
      assert.equal(list.json.data.length, 0);
    });

    test('a used-up or expired CVV slot is refused before anything is sent; the payment can be confirmed again', async () => {
      const { token, slot } = await tokenize(acquirerTestCards.approve);
      const gone = await t.request('DELETE', `${t.vaultUrl}/v1/cvv-slots/${slot}`);
      assert.equal(gone.status, 204);
      const created = await pay({
        amount: 300,
        currency: 'usd',
        payment_method: token,
        payment_method_options: { card: { cvc_token: slot } },
      });
      const r = await act(created.json.id, 'confirm');
      assert.equal(r.status, 404);
      assert.equal(r.json.code, 'cvv_slot_not_found');
      assert.equal(r.json.field, 'payment_method_options.card.cvc_token');
      assert.equal(
        r.json.error?.param,
        'payment_method_options[card][cvc_token]',
        'named as Stripe names it',
      );
      const after = await t.request<Payment>('GET', api(`/v1/payment_intents/${created.json.id}`));
      assert.equal(after.json.status, 'requires_confirmation');
      const again = await act(created.json.id, 'confirm');
      assert.equal(again.json.status, 'succeeded', 'confirmed without the CVV this time');
    });

    test('lists filter by status and page with starting_after', async () => {
      const a = (await pay({ amount: 111, currency: 'usd' })).json.id;
      const b = (await pay({ amount: 112, currency: 'usd' })).json.id;
      const page1 = await t.request<{ data: Payment[]; has_more: boolean }>(
        'GET',
        api('/v1/payment_intents?limit=1&status=requires_payment_method'),
      );
      assert.equal(page1.json.data[0]?.id, b);
      assert.equal(page1.json.has_more, true);
      const page2 = await t.request<{ data: Payment[] }>(
        'GET',
        api(`/v1/payment_intents?limit=1&status=requires_payment_method&starting_after=${b}`),
      );
      assert.equal(page2.json.data[0]?.id, a);
      const bad = await t.request<Payment>('GET', api('/v1/payment_intents?status=nonsense'));
      assert.equal(bad.status, 400);
      assert.equal(bad.json.field, 'status');
    });

    test('concurrent authorizations share statements: each payment, attempt and event is its own', async () => {
      // Approvals (captured at once and manual) and declines, created and confirmed together, so that
      // their starts and answers are written in shared statements (#startBatch, #answerBatch).
      const cards: Array<{ pan: string; decline: string | null; capture: 'automatic' | 'manual' }> = [];
      for (let i = 0; i < 24; i++) {
        const [card, code] = acquirerDeclines[i % acquirerDeclines.length] as [
          keyof typeof acquirerTestCards,
          string,
        ];
        cards.push(
          i % 3 === 2
            ? { pan: acquirerTestCards[card], decline: code, capture: 'automatic' }
            : { pan: acquirerTestCards.approve, decline: null, capture: i % 2 ? 'manual' : 'automatic' },
        );
      }
      const tokens = await Promise.all(cards.map((c) => tokenize(c.pan, { cvv: false })));
      const answers = await Promise.all(
        cards.map((c, i) =>
          pay({
            amount: 1000 + i,
            currency: 'usd',
            payment_method: tokens[i]?.token,
            capture_method: c.capture,
            confirm: true,
            metadata: { order: `batch-${i}` },
          }),
        ),
      );
      const ids: string[] = [];
      for (const [i, c] of cards.entries()) {
        const r = answers[i] as { status: number; json: Payment; text: string };
        if (c.decline) {
          assert.equal(r.status, 402, r.text);
          assert.equal(r.json.error?.decline_code, c.decline);
          ids.push((r.json as unknown as { payment_intent: string }).payment_intent);
        } else {
          assert.equal(r.status, 200, r.text);
          assert.equal(r.json.amount, 1000 + i);
          assert.equal(r.json.status, c.capture === 'manual' ? 'requires_capture' : 'succeeded');
          assert.equal(r.json.amount_received, c.capture === 'manual' ? 0 : 1000 + i);
          assert.equal(r.json.amount_capturable, c.capture === 'manual' ? 1000 + i : 0);
          ids.push(r.json.id);
        }
      }
      assert.equal(new Set(ids).size, cards.length, 'one payment each');
      const rows = await t.adminSql<
        { id: string; status: string; amount: string; metadata: { order: string }; last_error: unknown }[]
      >`select id, status, amount, metadata, last_error from payments.payment_intents where id in ${t.adminSql(ids)}`;
      const attempts = await t.adminSql<
        {
          payment_id: string;
          status: string;
          decline_code: string | null;
          amount: string;
          capture: boolean;
        }[]
      >`
        select payment_id, status, decline_code, amount, capture from payments.attempts
        where payment_id in ${t.adminSql(ids)}`;
      const events = await t.adminSql<{ type: string; payload: { data: { object: { id: string } } } }[]>`
        select type, payload from webhooks.events
        where payload->'data'->'object'->>'id' in ${t.adminSql(ids)}`;
      for (const [i, c] of cards.entries()) {
        const id = ids[i] as string;
        const row = rows.find((r) => r.id === id);
        assert.equal(Number(row?.amount), 1000 + i);
        assert.equal(row?.metadata.order, `batch-${i}`);
        assert.equal(
          row?.status,
          c.decline ? 'requires_payment_method' : c.capture === 'manual' ? 'requires_capture' : 'succeeded',
        );
        assert.equal(row?.last_error === null, c.decline === null);
        const mine = attempts.filter((a) => a.payment_id === id);
        assert.equal(mine.length, 1, 'one attempt per payment');
        assert.equal(mine[0]?.status, c.decline ? 'declined' : 'succeeded');
        assert.equal(mine[0]?.decline_code, c.decline);
        assert.equal(Number(mine[0]?.amount), 1000 + i);
        assert.equal(mine[0]?.capture, c.capture === 'automatic');
        const types = events.filter((e) => e.payload.data.object.id === id).map((e) => e.type);
        assert.deepEqual(types, [
          c.decline
            ? 'payment_intent.payment_failed'
            : c.capture === 'manual'
              ? 'payment_intent.amount_capturable_updated'
              : 'payment_intent.succeeded',
        ]);
      }
    });

    test('payment events reach the merchant’s webhook endpoint, signed, with no card data', async () => {
      const bodies: { body: string; signature: string }[] = [];
      const receiver = createHttpServer((request, response) => {
        let body = '';
        request.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        request.on('end', () => {
          bodies.push({ body, signature: String(request.headers['cardhold-signature']) });
          response.writeHead(200).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      try {
        const port = (receiver.address() as AddressInfo).port;
        const endpoint = await t.request<{ secret: string }>('POST', api('/v1/webhook_endpoints'), {
          body: {
            url: `http://127.0.0.1:${port}/hooks`,
            enabled_events: ['payment_intent.succeeded', 'refund.created'],
          },
        });
        assert.equal(endpoint.status, 201, endpoint.text);
        const { r } = await confirmWith(acquirerTestCards.approve, { amount: 1500 });
        await t.request('POST', api('/v1/refunds'), { body: { payment_intent: r.json.id, amount: 500 } });
        const until = Date.now() + 15_000;
        while (bodies.length < 2 && Date.now() < until)
          await new Promise((resolve) => setTimeout(resolve, 50));
        const events = bodies.map((b) => {
          verifyWebhookSignature(b.body, b.signature, endpoint.json.secret);
          assert.equal(findPans(b.body).length, 0, 'no card number in a webhook payload');
          return JSON.parse(b.body) as {
            type: string;
            data: { object: { id: string; payment_intent?: string } };
          };
        });
        const succeeded = events.find((e) => e.type === 'payment_intent.succeeded');
        const refunded = events.find((e) => e.type === 'refund.created');
        assert.equal(succeeded?.data.object.id, r.json.id);
        assert.equal(refunded?.data.object.payment_intent, r.json.id);
      } finally {
        receiver.closeAllConnections();
        await new Promise((resolve) => receiver.close(resolve));
      }
    });

    test('the api database holds no card number or CVV', async () => {
      const rows = await t.adminSql`
        select row_to_json(p)::text as j from payments.payment_intents p
        union all select row_to_json(a)::text from payments.attempts a
        union all select row_to_json(r)::text from payments.refunds r
        union all select row_to_json(i)::text from payments.idempotency_keys i`;
      assert.ok(rows.length > 10);
      const text = rows.map((r) => r['j'] as string).join('\n');
      for (const pan of allTestPans)
        assert.ok(!text.includes(pan), 'no test card number in the api database');
      assert.ok(!/"(cvv|cvc)"\s*:\s*"\d{3,4}"/.test(text), 'no CVV value');
    });
  });
}
