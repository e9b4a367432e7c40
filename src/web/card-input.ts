/**
 * What the hosted card fields check as the user types: brand, grouping, Luhn, expiry and CVC. Pure
 * functions, bundled into the iframe's script and tested in Node. The vault validates again on
 * tokenization; these checks are for the user, not for security.
 */
import { luhnValid } from '../shared/pan-detect.ts';
import { type CardBrand, detectBrand } from '../vault/card-brands.ts';

/** Error codes the fields show; each has one message the user sees (fieldMessages). */
export type FieldError =
  | 'number_required'
  | 'number_incomplete'
  | 'number_invalid'
  | 'expiry_required'
  | 'expiry_invalid'
  | 'expiry_past'
  | 'cvc_required'
  | 'cvc_invalid'
  | 'name_required'
  | 'name_invalid';

export const fieldMessages: Readonly<Record<FieldError, string>> = {
  number_required: 'Enter your card number.',
  number_incomplete: 'Your card number is incomplete.',
  number_invalid: 'Your card number is invalid.',
  expiry_required: "Enter your card's expiry date.",
  expiry_invalid: 'Enter the expiry date as MM / YY.',
  expiry_past: "Your card's expiry date is in the past.",
  cvc_required: "Enter your card's security code.",
  cvc_invalid: "Your card's security code is incomplete.",
  name_required: 'Enter the name on your card.',
  name_invalid: 'The name on your card is too long.',
};

export const digitsOf = (value: string): string => value.replace(/\D/g, '');

/** Groups as printed on the card: Amex and 15-digit Diners 4-6-5, 14-digit Diners 4-6-4, others by four. */
export function formatCardNumber(value: string): string {
  const digits = digitsOf(value).slice(0, 19);
  const brand = detectBrand(digits).brand;
  const groups = brand === 'amex' || (brand === 'diners' && digits.length <= 15) ? [4, 6, 5] : [];
  if (groups.length === 0) return digits.replace(/(\d{4})(?=\d)/g, '$1 ');
  const parts: string[] = [];
  let at = 0;
  for (const size of groups) {
    if (at >= digits.length) break;
    parts.push(digits.slice(at, at + size));
    at += size;
  }
  return parts.join(' ');
}

export function cardBrandOf(value: string): CardBrand {
  const digits = digitsOf(value);
  return digits.length === 0 ? 'unknown' : detectBrand(digits).brand;
}

/** `complete` false while the user may still be typing a valid number (shown only on blur or submit). */
export function checkCardNumber(value: string): { error: FieldError | null; complete: boolean } {
  const digits = digitsOf(value);
  if (digits.length === 0) return { error: 'number_required', complete: false };
  const { lengths } = detectBrand(digits);
  const longest = Math.max(...lengths);
  if (lengths.includes(digits.length) && luhnValid(digits)) return { error: null, complete: true };
  // A failed check digit at 16 digits or more is reported at once, though a few brands allow 19.
  const plausiblyDone = lengths.includes(digits.length) && digits.length >= 16;
  if (digits.length < longest && !plausiblyDone) return { error: 'number_incomplete', complete: false };
  return { error: 'number_invalid', complete: true };
}

/** Types "MM / YY" as the user goes: a leading 2–9 is a month on its own, the slash comes by itself. */
export function formatExpiry(value: string): string {
  let digits = digitsOf(value).slice(0, 4);
  if (/^[2-9]$/.test(digits.slice(0, 1))) digits = `0${digits}`.slice(0, 4);
  if (digits.length <= 2) return digits.length === 2 && value.includes('/') ? `${digits} / ` : digits;
  return `${digits.slice(0, 2)} / ${digits.slice(2)}`;
}

export function checkExpiry(
  value: string,
  now = new Date(),
): { error: FieldError | null; month?: number; year?: number } {
  const digits = digitsOf(value);
  if (digits.length === 0) return { error: 'expiry_required' };
  if (digits.length !== 4) return { error: 'expiry_invalid' };
  const month = Number(digits.slice(0, 2));
  const year = 2000 + Number(digits.slice(2));
  if (month < 1 || month > 12) return { error: 'expiry_invalid' };
  // A card is valid through the last day of its expiry month.
  const thisMonth = now.getUTCFullYear() * 12 + now.getUTCMonth();
  if (year * 12 + (month - 1) < thisMonth) return { error: 'expiry_past' };
  if (year > now.getUTCFullYear() + 20) return { error: 'expiry_invalid' };
  return { error: null, month, year };
}

/** CVC length follows the brand: four digits for Amex, three for the others, 3–4 when unknown. */
export function checkCvc(value: string, cardNumber: string): { error: FieldError | null } {
  const digits = digitsOf(value);
  if (digits.length === 0) return { error: 'cvc_required' };
  const expected = detectBrand(digitsOf(cardNumber)).cvvLength;
  const ok = expected === 'any' ? digits.length === 3 || digits.length === 4 : digits.length === expected;
  return { error: ok ? null : 'cvc_invalid' };
}

export const cvcMaxLength = (cardNumber: string): number => {
  const expected = detectBrand(digitsOf(cardNumber)).cvvLength;
  return expected === 'any' ? 4 : expected;
};

export function checkHolderName(value: string): { error: FieldError | null } {
  const name = value.trim();
  if (name.length === 0) return { error: 'name_required' };
  if (name.length > 100) return { error: 'name_invalid' };
  return { error: null };
}
