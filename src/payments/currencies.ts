import { CardholdError } from '../shared/errors.ts';

/**
 * ISO 4217 minor-unit exponents for the currencies cardhold accepts. Amounts are always integers in the
 * currency's minor unit: 1000 is USD 10.00, JPY 1000 and KWD 1.000. Currencies with an exponent other
 * than 2 are listed; every other listed code has 2.
 */
const exponentOther: Record<string, number> = {
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  UYI: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
  CLF: 4,
  UYW: 4,
};

const twoDecimal = [
  'AED',
  'AFN',
  'ALL',
  'AMD',
  'ANG',
  'AOA',
  'ARS',
  'AUD',
  'AWG',
  'AZN',
  'BAM',
  'BBD',
  'BDT',
  'BGN',
  'BMD',
  'BND',
  'BOB',
  'BRL',
  'BSD',
  'BTN',
  'BWP',
  'BYN',
  'BZD',
  'CAD',
  'CDF',
  'CHF',
  'CNY',
  'COP',
  'CRC',
  'CUP',
  'CVE',
  'CZK',
  'DKK',
  'DOP',
  'DZD',
  'EGP',
  'ERN',
  'ETB',
  'EUR',
  'FJD',
  'FKP',
  'GBP',
  'GEL',
  'GHS',
  'GIP',
  'GMD',
  'GTQ',
  'GYD',
  'HKD',
  'HNL',
  'HTG',
  'HUF',
  'IDR',
  'ILS',
  'INR',
  'IRR',
  'JMD',
  'KES',
  'KGS',
  'KHR',
  'KPW',
  'KYD',
  'KZT',
  'LAK',
  'LBP',
  'LKR',
  'LRD',
  'LSL',
  'MAD',
  'MDL',
  'MGA',
  'MKD',
  'MMK',
  'MNT',
  'MOP',
  'MRU',
  'MUR',
  'MVR',
  'MWK',
  'MXN',
  'MYR',
  'MZN',
  'NAD',
  'NGN',
  'NIO',
  'NOK',
  'NPR',
  'NZD',
  'PAB',
  'PEN',
  'PGK',
  'PHP',
  'PKR',
  'PLN',
  'QAR',
  'RON',
  'RSD',
  'RUB',
  'SAR',
  'SBD',
  'SCR',
  'SDG',
  'SEK',
  'SGD',
  'SHP',
  'SLE',
  'SOS',
  'SRD',
  'SSP',
  'STN',
  'SVC',
  'SYP',
  'SZL',
  'THB',
  'TJS',
  'TMT',
  'TOP',
  'TRY',
  'TTD',
  'TWD',
  'TZS',
  'UAH',
  'USD',
  'UYU',
  'UZS',
  'VES',
  'WST',
  'XCD',
  'YER',
  'ZAR',
  'ZMW',
  'ZWG',
];

const exponents = new Map<string, number>([
  ...twoDecimal.map((code) => [code, 2] as const),
  ...Object.entries(exponentOther),
]);

/** The largest amount accepted, in major units, whatever the exponent (about 1e8 of any currency). */
const MAX_MAJOR_UNITS = 99_999_999;

/** Normalises a currency code (Stripe clients send lower case) and checks it is supported. */
export function currencyCode(value: string, field = 'currency'): string {
  const code = value.toUpperCase();
  if (!exponents.has(code)) throw new CardholdError('currency_invalid', { field });
  return code;
}

export function exponentOf(code: string): number {
  const exponent = exponents.get(code.toUpperCase());
  if (exponent === undefined) throw new CardholdError('currency_invalid', { field: 'currency' });
  return exponent;
}

/** Checks an amount in minor units: a positive integer within the currency's bounds. */
export function checkAmount(amount: number, currency: string, field = 'amount'): number {
  const max = MAX_MAJOR_UNITS * 10 ** exponentOf(currency);
  if (!Number.isSafeInteger(amount) || amount < 1 || amount > max) {
    throw new CardholdError('amount_invalid', {
      field,
      detail: `The amount must be a whole number of minor units from 1 to ${max} for ${currency.toUpperCase()}`,
    });
  }
  return amount;
}

/** `1050, 'USD'` → `'10.50'`; `1050, 'JPY'` → `'1050'`; `1050, 'KWD'` → `'1.050'`. */
export function formatAmount(amount: number, currency: string): string {
  const exponent = exponentOf(currency);
  if (exponent === 0) return String(amount);
  const digits = String(amount).padStart(exponent + 1, '0');
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}
