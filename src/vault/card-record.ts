import { createHmac, type KeyObject } from 'node:crypto';
import type { Secret } from '../shared/secret.ts';

/**
 * The AAD of a token's ciphertext and wrapped data key. `version` is the key version the record was
 * sealed under (`aad_version`), fixed for the record's life: rewrapping moves the data key to a newer
 * key-encrypting key without re-encrypting, so the AAD keeps naming the original version.
 */
export function panAad(merchantId: string, tokenId: string, version: number): Buffer {
  return Buffer.from(`cardhold/pan/v1|${merchantId}|${tokenId}|${version}`);
}

/** HMAC-SHA-256 of the card number under a merchant's fingerprint key (PCI DSS 3.5.1.1). */
export function fingerprintOf(key: KeyObject, pan: Secret<string>): Buffer {
  return createHmac('sha256', key).update(pan.expose()).digest();
}
