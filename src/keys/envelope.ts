import { createSecretKey, type KeyObject } from 'node:crypto';
import { open, seal } from './aes-gcm.ts';
import { randomPooled } from './random-pool.ts';

export interface SealedRecord {
  ciphertext: Buffer;
  wrappedDataKey: Buffer;
}

const dekContext = (aad: Buffer) => Buffer.concat([Buffer.from('dek|'), aad]);

/**
 * Envelope encryption: a fresh 256-bit data key per record encrypts the plaintext; the key-encrypting
 * key wraps the data key. Both layers carry the same AAD, so a ciphertext or wrapped key moved to
 * another record, merchant or key version no longer opens. The data key's JavaScript buffer is zeroed at
 * once; the cipher uses a KeyObject, whose native copy Node frees with OPENSSL_clear_free. (Passing the
 * raw buffer makes Node build the same native key inside createCipheriv, at three times the cost.)
 */
export function sealRecord(kek: KeyObject, plaintext: Buffer, aad: Buffer): SealedRecord {
  const material = randomPooled(32);
  let wrappedDataKey: Buffer;
  let dataKey: KeyObject;
  try {
    wrappedDataKey = seal(kek, material, dekContext(aad));
    dataKey = createSecretKey(material);
  } finally {
    material.fill(0);
  }
  return { ciphertext: seal(dataKey, plaintext, aad), wrappedDataKey };
}

export function openRecord(kek: KeyObject, record: SealedRecord, aad: Buffer): Buffer {
  const material = open(kek, record.wrappedDataKey, dekContext(aad));
  let dataKey: KeyObject;
  try {
    dataKey = createSecretKey(material);
  } finally {
    material.fill(0);
  }
  return open(dataKey, record.ciphertext, aad);
}

/**
 * Moves a record's data key from one key-encrypting key to another without opening the ciphertext: the
 * data key is unwrapped, wrapped again under the same AAD, and its buffer zeroed.
 */
export function rewrapDataKey(from: KeyObject, to: KeyObject, wrappedDataKey: Buffer, aad: Buffer): Buffer {
  const material = open(from, wrappedDataKey, dekContext(aad));
  try {
    return seal(to, material, dekContext(aad));
  } finally {
    material.fill(0);
  }
}
