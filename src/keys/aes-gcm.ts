import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';
import { CardholdError } from '../shared/errors.ts';
import { randomPooled } from './random-pool.ts';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM: output is iv ‖ tag ‖ ciphertext, the AAD binds the data to its context. */
export function seal(key: KeyObject | Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomPooled(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

/**
 * Opens what `seal` produced. Any change to the bytes, the AAD or the key gives an integrity error
 * and no plaintext.
 */
export function open(key: KeyObject | Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length < IV_BYTES + TAG_BYTES) throw new CardholdError('token_integrity_failed');
  const iv = sealed.subarray(0, IV_BYTES);
  const tag = sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
  const body = sealed.subarray(IV_BYTES + TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (cause) {
    throw new CardholdError('token_integrity_failed', { cause });
  }
}
