import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acquirerTestCards, testCards } from '../../test/fixtures/cards.ts';
import {
  cardBrandOf,
  checkCardNumber,
  checkCvc,
  checkExpiry,
  checkHolderName,
  formatCardNumber,
  formatExpiry,
} from './card-input.ts';

const now = new Date(Date.UTC(2026, 5, 15));
/** The same card with its last digit changed: a Luhn failure. */
const broken = (pan: string) => pan.slice(0, -1) + String((Number(pan.slice(-1)) + 1) % 10);

test('card numbers are grouped as printed and their brand detected as typed', () => {
  assert.equal(formatCardNumber(testCards.visa), '4242 4242 4242 4242');
  assert.equal(formatCardNumber(testCards.amex), '3782 822463 10005');
  assert.equal(formatCardNumber(testCards.diners14), '3622 720627 1667');
  assert.equal(formatCardNumber(testCards.visa13), '4222 2222 2222 2');
  assert.equal(formatCardNumber('4242-42ab42'), '4242 4242');
  assert.equal(formatCardNumber('4'.repeat(21)), '4444 4444 4444 4444 444', '19 digits at most');
  assert.equal(cardBrandOf('4'), 'visa');
  assert.equal(cardBrandOf('37'), 'amex');
  assert.equal(cardBrandOf('2223'), 'mastercard');
  assert.equal(cardBrandOf(''), 'unknown');
});

test('a number is complete when valid, incomplete while short, invalid when its check digit fails', () => {
  for (const pan of [...Object.values(testCards), acquirerTestCards.insufficientFunds])
    assert.deepEqual(checkCardNumber(pan), { error: null, complete: true }, pan.slice(-4));
  assert.equal(checkCardNumber('').error, 'number_required');
  assert.equal(checkCardNumber('4242 4242').error, 'number_incomplete');
  assert.equal(checkCardNumber(broken(testCards.visa)).error, 'number_invalid');
  assert.equal(checkCardNumber(broken(testCards.amex)).error, 'number_invalid');
  assert.equal(checkCardNumber(broken(testCards.visa13)).error, 'number_incomplete', 'Visa may go on to 16');
});

test('expiry is typed as MM / YY and must be a real month, not in the past', () => {
  assert.equal(formatExpiry('1'), '1');
  assert.equal(formatExpiry('3'), '03');
  assert.equal(formatExpiry('122'), '12 / 2');
  assert.equal(formatExpiry('12/30'), '12 / 30');
  assert.deepEqual(
    checkExpiry('06 / 26', now),
    { error: null, month: 6, year: 2026 },
    'valid through its month',
  );
  assert.equal(checkExpiry('05 / 26', now).error, 'expiry_past');
  assert.equal(checkExpiry('13 / 30', now).error, 'expiry_invalid');
  assert.equal(checkExpiry('00 / 30', now).error, 'expiry_invalid');
  assert.equal(checkExpiry('12 / 3', now).error, 'expiry_invalid');
  assert.equal(checkExpiry('', now).error, 'expiry_required');
  assert.equal(checkExpiry('12 / 99', now).error, 'expiry_invalid', 'more than 20 years ahead');
});

test('the CVC length follows the brand, and a name is required', () => {
  assert.equal(checkCvc('123', testCards.visa).error, null);
  assert.equal(checkCvc('1234', testCards.visa).error, 'cvc_invalid');
  assert.equal(checkCvc('1234', testCards.amex).error, null);
  assert.equal(checkCvc('123', testCards.amex).error, 'cvc_invalid');
  assert.equal(checkCvc('', testCards.visa).error, 'cvc_required');
  assert.equal(checkHolderName('  ').error, 'name_required');
  assert.equal(checkHolderName('Ada Lovelace').error, null);
  assert.equal(checkHolderName('x'.repeat(101)).error, 'name_invalid');
});
