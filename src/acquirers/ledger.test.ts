import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CardholdError } from '../shared/errors.ts';
import { AcquirerLedger, type NewAuthorization } from './ledger.ts';

const authorization = (overrides: Partial<NewAuthorization> = {}): NewAuthorization => ({
  reference: `att_${Math.random().toString(36).slice(2)}`,
  merchant: 'mer_test',
  amount: 1000,
  currency: 'EUR',
  capture: false,
  card: { brand: 'visa', last4: '4242' },
  decline: null,
  ...overrides,
});

const refusedWith = (code: string) => (error: unknown) =>
  error instanceof CardholdError && error.code === code;

describe('acquirer ledger', () => {
  test('partial captures up to the authorized amount, then refunds up to the captured amount', () => {
    const ledger = new AcquirerLedger();
    const { id, state, authorized_amount } = ledger.record(authorization());
    assert.equal(state, 'authorized');
    assert.equal(authorized_amount, 1000);
    assert.equal(ledger.capture(id, { amount: 400, reference: 'c1' }).state, 'partially_captured');
    const before = ledger.get(id);
    assert.throws(
      () => ledger.capture(id, { amount: 601, reference: 'c2' }),
      refusedWith('amount_exceeds_authorized'),
    );
    assert.deepEqual(ledger.get(id), before, 'a refused capture changes nothing');
    const full = ledger.capture(id, { amount: 600, reference: 'c2' });
    assert.equal(full.state, 'captured');
    assert.equal(full.captured_amount, 1000);
    assert.deepEqual(
      full.captures.map((c) => [c.reference, c.amount]),
      [
        ['c1', 400],
        ['c2', 600],
      ],
    );
    assert.throws(
      () => ledger.capture(id, { amount: 1, reference: 'c3' }),
      refusedWith('amount_exceeds_authorized'),
    );
    assert.throws(() => ledger.void(id, { reference: 'v1' }), refusedWith('invalid_state'));
    assert.equal(ledger.refund(id, { amount: 700, reference: 'r1' }).refunded_amount, 700);
    assert.throws(
      () => ledger.refund(id, { amount: 301, reference: 'r2' }),
      refusedWith('amount_exceeds_captured'),
    );
    const refunded = ledger.refund(id, { amount: 300, reference: 'r2' });
    assert.equal(refunded.refunded_amount, 1000);
    assert.equal(refunded.state, 'captured', 'refunds do not change the capture state');
  });

  test('a final capture releases what it did not take: nothing more can be captured, refunds still can be', () => {
    const ledger = new AcquirerLedger();
    const { id } = ledger.record(authorization());
    ledger.capture(id, { amount: 300, reference: 'c1', final: false });
    const open = ledger.get(id);
    assert.deepEqual([open.state, open.released_amount], ['partially_captured', 0]);
    const last = ledger.capture(id, { amount: 200, reference: 'c2', final: true });
    assert.deepEqual(
      [last.state, last.captured_amount, last.released_amount],
      ['captured', 500, 500],
      'the 500 never captured goes back to the cardholder',
    );
    // The same reference again is a repeat, answered as the books stand; a new capture is refused.
    assert.deepEqual(ledger.capture(id, { amount: 200, reference: 'c2', final: true }), last);
    assert.throws(() => ledger.capture(id, { amount: 1, reference: 'c3' }), refusedWith('invalid_state'));
    assert.throws(() => ledger.void(id, { reference: 'v1' }), refusedWith('invalid_state'));
    assert.equal(ledger.refund(id, { amount: 500, reference: 'r1' }).refunded_amount, 500);
    // A final capture of everything releases nothing.
    const whole = ledger.record(authorization({ reference: 'auth-2' }));
    const all = ledger.capture(whole.id, { amount: 1000, reference: 'c4', final: true });
    assert.deepEqual([all.state, all.released_amount], ['captured', 0]);
    assert.throws(
      () => ledger.capture(whole.id, { amount: 1, reference: 'c5' }),
      refusedWith('invalid_state'),
    );
  });

  test('refunds are bounded by what was captured, not by what was authorized', () => {
    const ledger = new AcquirerLedger();
    const { id } = ledger.record(authorization());
    assert.throws(
      () => ledger.refund(id, { amount: 1, reference: 'r0' }),
      refusedWith('amount_exceeds_captured'),
    );
    ledger.capture(id, { amount: 250, reference: 'c1' });
    assert.throws(
      () => ledger.refund(id, { amount: 251, reference: 'r1' }),
      refusedWith('amount_exceeds_captured'),
    );
    assert.equal(ledger.refund(id, { amount: 250, reference: 'r1' }).refunded_amount, 250);
  });

  test('a void only while nothing is captured; a voided authorization takes nothing more', () => {
    const ledger = new AcquirerLedger();
    const { id } = ledger.record(authorization());
    assert.equal(ledger.void(id, { reference: 'v1' }).state, 'voided');
    assert.equal(ledger.void(id, { reference: 'v1' }).state, 'voided', 'the same void again is a replay');
    assert.throws(() => ledger.void(id, { reference: 'v2' }), refusedWith('invalid_state'));
    assert.throws(() => ledger.capture(id, { amount: 1, reference: 'c1' }), refusedWith('invalid_state'));
    assert.throws(() => ledger.refund(id, { amount: 1, reference: 'r1' }), refusedWith('invalid_state'));
    const partly = ledger.record(authorization());
    ledger.capture(partly.id, { amount: 1, reference: 'c1' });
    assert.throws(() => ledger.void(partly.id, { reference: 'v1' }), refusedWith('invalid_state'));
  });

  test('a declined authorization authorizes nothing and refuses every movement', () => {
    const ledger = new AcquirerLedger();
    const declined = ledger.record(authorization({ decline: 'insufficient_funds', capture: true }));
    assert.equal(declined.status, 'declined');
    assert.equal(declined.state, 'declined');
    assert.equal(declined.decline_code, 'insufficient_funds');
    assert.equal(declined.approval_code, null);
    assert.equal(declined.authorized_amount, 0);
    assert.deepEqual(declined.captures, [], 'capture: true captures nothing on a decline');
    for (const attempt of [
      () => ledger.capture(declined.id, { amount: 1, reference: 'c' }),
      () => ledger.void(declined.id, { reference: 'v' }),
      () => ledger.refund(declined.id, { amount: 1, reference: 'r' }),
    ]) {
      assert.throws(attempt, refusedWith('invalid_state'));
    }
  });

  test('authorize and capture in one step', () => {
    const ledger = new AcquirerLedger();
    const sale = ledger.record(authorization({ capture: true, amount: 5000 }));
    assert.equal(sale.state, 'captured');
    assert.equal(sale.captured_amount, 5000);
    assert.equal(sale.captures.length, 1);
    assert.match(sale.approval_code ?? '', /^[0-9A-Z]{6}$/);
  });

  test('every operation is idempotent by its reference', () => {
    const ledger = new AcquirerLedger();
    const input = authorization();
    const first = ledger.record(input);
    assert.deepEqual(
      ledger.record({ ...input, amount: 1 }),
      first,
      'the same reference replays, unprocessed',
    );
    assert.equal(ledger.size, 1);
    ledger.capture(first.id, { amount: 300, reference: 'c1' });
    const again = ledger.capture(first.id, { amount: 300, reference: 'c1' });
    assert.equal(again.captured_amount, 300);
    assert.equal(again.captures.length, 1);
    ledger.refund(first.id, { amount: 100, reference: 'r1' });
    assert.equal(ledger.refund(first.id, { amount: 100, reference: 'r1' }).refunded_amount, 100);
  });

  test('unknown ids are not found; answers are copies the caller cannot use to change the books', () => {
    const ledger = new AcquirerLedger();
    assert.throws(() => ledger.get(`aqa_${'Z'.repeat(22)}`), refusedWith('authorization_not_found'));
    const recorded = ledger.record(authorization());
    recorded.captured_amount = 1_000_000;
    assert.equal(ledger.get(recorded.id).captured_amount, 0);
  });

  test('bounded: beyond its capacity the oldest authorization is forgotten, with its reference', () => {
    const ledger = new AcquirerLedger({ capacity: 3 });
    const inputs = [1, 2, 3, 4].map((n) => authorization({ reference: `att_${n}` }));
    const recorded = inputs.map((input) => ledger.record(input));
    assert.equal(ledger.size, 3);
    assert.equal(ledger.findByReference('att_1'), undefined);
    assert.throws(() => ledger.get(recorded[0]!.id), refusedWith('authorization_not_found'));
    assert.equal(ledger.findByReference('att_4')?.id, recorded[3]!.id);
  });
});
