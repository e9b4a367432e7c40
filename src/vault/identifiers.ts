import { randomBytes, randomInt } from 'node:crypto';
import { luhnValid } from '../shared/pan-detect.ts';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 128 random bits as 22 base62 characters: opaque, URL-safe, not derivable from anything. */
export function randomBase62(bytes = 16): string {
  let n = BigInt(`0x${randomBytes(bytes).toString('hex')}`);
  const width = Math.ceil((bytes * 8) / Math.log2(62));
  let out = '';
  while (n > 0n) {
    out = ALPHABET[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out.padStart(width, '0');
}

export const newId = (prefix: 'tok' | 'cvv' | 'mer' | 'key') => `${prefix}_${randomBase62()}`;

export const tokenIdPattern = '^tok_[0-9A-Za-z]{22}$';
export const cvvSlotIdPattern = '^cvv_[0-9A-Za-z]{22}$';
export const merchantIdPattern = '^mer_[0-9A-Za-z]{22}$';
export const apiKeyIdPattern = '^key_[0-9A-Za-z]{22}$';

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
