import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testCards, testCvvs } from '../../test/fixtures/cards.ts';
import { CardholdError } from '../shared/errors.ts';
import { Secret } from '../shared/secret.ts';
import { detectBrand } from './card-brands.ts';
import { validateCard, validateCvv } from './card-validation.ts';

const now = new Date('2026-11-22T00:00:00Z');
const check = (pan: string, extra: Partial<{ expMonth: number; expYear: number; holderName: string }> = {}) =>
  validateCard({ pan: new Secret(pan), expMonth: 12, expYear: 2030, ...extra }, now);
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof CardholdError);
    return { code: error.code, field: error.field, message: error.message };
  }
  assert.fail('expected a CardholdError');
};

test('brands by IIN range with their lengths', () => {
  const expected: Record<string, string> = {
    visa: 'visa',
    visaDebit: 'visa',
    visa13: 'visa',
    visa19: 'visa',
    mastercard: 'mastercard',
    mastercard2series: 'mastercard',
    amex: 'amex',
    discover: 'discover',
    diners14: 'diners',
    diners: 'diners',
    jcb: 'jcb',
    unionpay: 'unionpay',
    maestro12: 'maestro',
  };
  for (const [name, pan] of Object.entries(testCards)) assert.equal(check(pan).brand, expected[name], name);
  assert.equal(
    detectBrand('6221260000000000').brand,
    'discover',
    'China UnionPay co-brand range is Discover',
  );
  assert.equal(detectBrand('6229260000000000').brand, 'unionpay');
  assert.equal(detectBrand('9999999999999995').brand, 'unknown');
});

test('display metadata: 8-digit BIN for 16+ digits, 6 otherwise, last four', () => {
  assert.deepEqual([check(testCards.visa).bin, check(testCards.visa).last4], ['42424242', '4242']);
  assert.equal(check(testCards.amex).bin, '378282');
  assert.equal(check(testCards.visa13).bin, '422222');
});

test('rejections name the field and never carry the number', () => {
  const cases: Array<[() => unknown, string, string]> = [
    [() => check('4242424242424241'), 'card_number_luhn_failed', 'pan'],
    [() => check('424242424242424'), 'card_number_length_invalid', 'pan'],
    [() => check('37828224631000'), 'card_number_length_invalid', 'pan'],
    [() => check('4242 4242 4242 4242'), 'card_number_invalid', 'pan'],
    [() => check('12345'), 'card_number_length_invalid', 'pan'],
    [() => check(testCards.visa, { expMonth: 0 }), 'card_expiry_invalid', 'exp_month'],
    [() => check(testCards.visa, { expYear: 30 }), 'card_expiry_invalid', 'exp_year'],
    [() => check(testCards.visa, { expYear: 2026, expMonth: 10 }), 'card_expired', 'exp_year'],
    [() => check(testCards.visa, { holderName: ' ' }), 'holder_name_invalid', 'holder_name'],
    [() => check(testCards.visa, { holderName: 'a'.repeat(101) }), 'holder_name_invalid', 'holder_name'],
    [() => check(testCards.visa, { holderName: 'Ada\u0007' }), 'holder_name_invalid', 'holder_name'],
    [
      () => check(testCards.visa, { holderName: `Ada ${testCards.jcb}` }),
      'holder_name_invalid',
      'holder_name',
    ],
  ];
  for (const [fn, code, field] of cases) {
    const error = codeOf(fn);
    assert.equal(error.code, code);
    assert.equal(error.field, field);
    assert.ok(!/\d{12,}/.test(error.message));
  }
  assert.equal(
    check(testCards.visa, { expYear: 2026, expMonth: 11 }).expMonth,
    11,
    'valid through the end of its month',
  );
});

test('CVV length follows the brand', () => {
  validateCvv(new Secret(testCvvs.four), 4, 'cvv');
  validateCvv(new Secret(testCvvs.three), 3, 'cvv');
  assert.equal(codeOf(() => validateCvv(new Secret(testCvvs.three), 4, 'cvv')).code, 'cvv_invalid');
  assert.equal(codeOf(() => validateCvv(new Secret('12a'), 'any', 'cards[2].cvv')).field, 'cards[2].cvv');
});
