import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CardholdError } from '../shared/errors.ts';
import { checkAmount, currencyCode, exponentOf, formatAmount } from './currencies.ts';

test('ISO 4217 exponents: JPY 0, USD 2, KWD 3; amounts are minor units', () => {
  assert.equal(exponentOf('JPY'), 0);
  assert.equal(exponentOf('usd'), 2);
  assert.equal(exponentOf('KWD'), 3);
  assert.equal(formatAmount(1050, 'JPY'), '1050');
  assert.equal(formatAmount(1050, 'USD'), '10.50');
  assert.equal(formatAmount(1050, 'KWD'), '1.050');
  assert.equal(formatAmount(5, 'USD'), '0.05');
  assert.equal(formatAmount(5, 'KWD'), '0.005');
});

test('currency codes are normalised and unknown ones refused, naming the field', () => {
  assert.equal(currencyCode('eur'), 'EUR');
  assert.throws(
    () => currencyCode('zzz'),
    (e: unknown) => e instanceof CardholdError && e.code === 'currency_invalid' && e.field === 'currency',
  );
});

test('amounts are whole positive minor units within a bound that scales with the exponent', () => {
  assert.equal(checkAmount(1, 'USD'), 1);
  const refused = (amount: number, currency: string) =>
    assert.throws(
      () => checkAmount(amount, currency),
      (e: unknown) => e instanceof CardholdError && e.code === 'amount_invalid' && e.field === 'amount',
    );
  refused(0, 'USD');
  refused(-5, 'USD');
  refused(1.5, 'USD');
  refused(99_999_999 + 1, 'JPY');
  assert.equal(checkAmount(99_999_999, 'JPY'), 99_999_999);
  assert.equal(checkAmount(99_999_999_000, 'KWD'), 99_999_999_000);
  refused(99_999_999_001, 'KWD');
});
