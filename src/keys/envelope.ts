import { type KeyObject, randomBytes } from 'node:crypto';
import { open, seal } from './aes-gcm.ts';

export interface SealedRecord {
  ciphertext: Buffer;
  wrappedDataKey: Buffer;
}

const dekContext = (aad: Buffer) => Buffer.concat([Buffer.from('dek|'), aad]);

/**
 * Envelope encryption: a fresh 256-bit data key per record encrypts the plaintext; the key-encrypting
 * key wraps the data key. Both layers carry the same AAD, so a ciphertext or wrapped key moved to
 * another record, merchant or key version no longer opens. The data key is zeroed after use.
 */
export function sealRecord(kek: KeyObject, plaintext: Buffer, aad: Buffer): SealedRecord {
  const dataKey = randomBytes(32);
  try {
    return { ciphertext: seal(dataKey, plaintext, aad), wrappedDataKey: seal(kek, dataKey, dekContext(aad)) };
  } finally {
    dataKey.fill(0);
  }
}

export function openRecord(kek: KeyObject, record: SealedRecord, aad: Buffer): Buffer {
  const dataKey = open(kek, record.wrappedDataKey, dekContext(aad));
  try {
    return open(dataKey, record.ciphertext, aad);
  } finally {
    dataKey.fill(0);
  }
}
