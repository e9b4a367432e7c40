import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { after, before, describe, test } from 'node:test';
import Stripe from 'stripe';
import { acquirerTestCards, testCvvs } from '../../test/fixtures/cards.ts';
import { futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';

/** The official `stripe` package, unmodified, pointed at cardhold's api by host, port and protocol. */
describe('the official stripe SDK against cardhold', () => {
  let t: TestPlatform;
  let stripe: Stripe;

  before(async () => {
    t = await startTestPlatform('embedded', 'stripe-sdk', { roles: ['vault', 'api', 'acquirer'] });
    const { hostname, port } = new URL(t.apiUrl);
    stripe = new Stripe(t.secretKey, {
      host: hostname,
      port: Number(port),
      protocol: 'https',
      httpAgent: new Agent({ ca: await readFile(t.platform.caFile) }),
      maxNetworkRetries: 0,
    });
  });
  after(async () => {
    await t?.close();
  });

  const tokenize = async (pan: string) => {
    const r = await t.request<{ token: { id: string }; cvv_slot: { id: string } }>(
      'POST',
      `${t.vaultUrl}/v1/tokens`,
      {
        body: { pan, exp_month: 12, exp_year: futureYear, cvv: testCvvs.three },
      },
    );
    assert.equal(r.status, 201);
    return { token: r.json.token.id, slot: r.json.cvv_slot.id };
  };

  test('create, confirm, capture and refund a payment', async () => {
    const { token, slot } = await tokenize(acquirerTestCards.approve);
    const created = await stripe.paymentIntents.create({
      amount: 2500,
      currency: 'usd',
      capture_method: 'manual',
      payment_method: token,
      payment_method_options: { card: { cvc_token: slot } },
      metadata: { order: 'A-1' },
    });
    assert.equal(created.object, 'payment_intent');
    assert.equal(created.status, 'requires_confirmation');
    assert.equal(created.metadata['order'], 'A-1');

    const confirmed = await stripe.paymentIntents.confirm(created.id);
    assert.equal(confirmed.status, 'requires_capture');
    assert.equal(confirmed.amount_capturable, 2500);

    const captured = await stripe.paymentIntents.capture(created.id, { amount_to_capture: 2000 });
    assert.equal(captured.status, 'succeeded');
    assert.equal(captured.amount_received, 2000);

    const refund = await stripe.refunds.create({ payment_intent: created.id, amount: 500 });
    assert.equal(refund.object, 'refund');
    assert.equal(refund.status, 'succeeded');
    assert.equal(refund.amount, 500);

    const retrieved = await stripe.paymentIntents.retrieve(created.id);
    assert.equal(retrieved.status, 'succeeded');
    const listed = await stripe.paymentIntents.list({ limit: 5 });
    assert.ok(listed.data.some((p) => p.id === created.id));
    const canceled = await stripe.paymentIntents.create({ amount: 100, currency: 'jpy' });
    assert.equal((await stripe.paymentIntents.cancel(canceled.id)).status, 'canceled');
  });

  test('a decline arrives as a StripeCardError with its decline code', async () => {
    const { token, slot } = await tokenize(acquirerTestCards.insufficientFunds);
    await assert.rejects(
      stripe.paymentIntents.create({
        amount: 1200,
        currency: 'eur',
        confirm: true,
        payment_method: token,
        payment_method_options: { card: { cvc_token: slot } },
      }),
      (error: unknown) => {
        assert.ok(error instanceof Stripe.errors.StripeCardError);
        assert.equal(error.code, 'card_declined');
        assert.equal(error.decline_code, 'insufficient_funds');
        return true;
      },
    );
  });

  test('invalid parameters arrive as a StripeInvalidRequestError naming the parameter', async () => {
    await assert.rejects(stripe.paymentIntents.create({ amount: 100, currency: 'zzz' }), (error: unknown) => {
      const e = error as { type?: string; statusCode?: number; message?: string };
      assert.ok(
        error instanceof Stripe.errors.StripeInvalidRequestError,
        `${e.type} ${e.statusCode} ${e.message}`,
      );
      assert.equal(error.param, 'currency');
      return true;
    });
    await assert.rejects(stripe.paymentIntents.retrieve(`pi_${'Q'.repeat(22)}`), (error: unknown) => {
      const e = error as { type?: string; statusCode?: number; message?: string };
      assert.ok(
        error instanceof Stripe.errors.StripeInvalidRequestError,
        `${e.type} ${e.statusCode} ${e.message}`,
      );
      assert.equal(error.code, 'resource_missing');
      return true;
    });
  });
});
