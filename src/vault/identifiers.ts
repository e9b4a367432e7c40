import { randomInt } from 'node:crypto';
import { randomPooled } from '../keys/random-pool.ts';
import { luhnValid } from '../shared/pan-detect.ts';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * At least `bytes`×8 random bits as base62 characters (16 bytes: 22 characters), opaque and URL-safe.
 * Each character comes from one random byte below 248 (= 4×62), so every character is uniform; bytes
 * at 248 or above are discarded rather than folded in, which would bias the first characters.
 */
export function randomBase62(bytes = 16): string {
  const width = Math.ceil((bytes * 8) / Math.log2(62));
  let out = '';
  while (out.length < width) {
    for (const byte of randomPooled(width + 8)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === width) break;
    }
  }
  return out;
}

export type IdPrefix = 'tok' | 'cvv' | 'mer' | 'key' | IdPrefixPayments;
/** Payments: payment intents, their attempts, captures and refunds. */
type IdPrefixPayments = 'pi' | 'pa' | 'cap' | 're';
export const newId = (prefix: IdPrefix) => `${prefix}_${randomBase62()}`;

export const tokenIdPattern = '^tok_[0-9A-Za-z]{22}$';
export const cvvSlotIdPattern = '^cvv_[0-9A-Za-z]{22}$';
export const merchantIdPattern = '^mer_[0-9A-Za-z]{22}$';
export const apiKeyIdPattern = '^key_[0-9A-Za-z]{22}$';
export const paymentIdPattern = '^pi_[0-9A-Za-z]{22}$';
export const refundIdPattern = '^re_[0-9A-Za-z]{22}$';

/**
 * Format-preserving alias: the card's BIN and last four around random digits, the same length as the
 * PAN, and deliberately Luhn-invalid so that neither people nor scanners can mistake it for a card.
 */
export function formatPreservingAlias(pan: string): string {
  const head = pan.slice(0, 6);
  const tail = pan.slice(-4);
  const middleLength = pan.length - 10;
  for (;;) {
    let middle = '';
    for (let i = 0; i < middleLength; i++) middle += String(randomInt(10));
    const alias = head + middle + tail;
    if (!luhnValid(alias) && alias !== pan) return alias;
  }
}

export const aliasPattern = '^[0-9]{12,19}$';
