import { luhnValid } from '../shared/pan-detect.ts';
import { type CardBrand, detectBrand } from '../vault/card-brands.ts';
import { maskDigits } from './masking.ts';
import { isPublicTestPan } from './test-cards.ts';

/** A digit sequence that is a card number. It holds the masked form only, never the digits. */
export interface CardMatch {
  brand: Exclude<CardBrand, 'unknown'>;
  length: number;
  masked: string;
  testCard: boolean;
}

export const minPanLength = 12;
export const maxPanLength = 19;

/**
 * Whether a 12–19 digit sequence is a card number: Luhn, a known brand's IIN range with a length that
 * brand issues, and not a trivial sequence (one repeated digit, ascending or descending runs). Published
 * test numbers are recognised before the trivial-sequence rule so that they are reported, never dropped.
 */
export function matchCard(digits: string): CardMatch | null {
  if (digits.length < minPanLength || digits.length > maxPanLength) return null;
  if (!luhnValid(digits)) return null;
  const info = detectBrand(digits);
  if (info.brand === 'unknown' || !info.lengths.includes(digits.length)) return null;
  const testCard = isPublicTestPan(digits);
  if (!testCard && isTrivialSequence(digits)) return null;
  return { brand: info.brand, length: digits.length, masked: maskDigits(digits), testCard };
}

/**
 * Whether any brand's IIN range starts with each first digit (derived from the brand table), so the
 * detector can skip numbers like epoch milliseconds without building a string.
 */
export const canStartCardNumber: readonly boolean[] = Array.from({ length: 10 }, (_, first) => {
  for (let prefix = 0; prefix < 1000; prefix++) {
    const probe = `${first}${String(prefix).padStart(3, '0')}000000000000`;
    if (detectBrand(probe).brand !== 'unknown') return true;
  }
  return false;
});

/** One repeated digit, or a run that steps by +1 or −1 (wrapping 9→0) all along. */
export function isTrivialSequence(digits: string): boolean {
  let same = true;
  let up = true;
  let down = true;
  for (let i = 1; i < digits.length; i++) {
    const step = (digits.charCodeAt(i) - digits.charCodeAt(i - 1) + 10) % 10;
    if (step !== 0) same = false;
    if (step !== 1) up = false;
    if (step !== 9) down = false;
  }
  return same || up || down;
}
