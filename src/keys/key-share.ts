import { createHash, timingSafeEqual } from 'node:crypto';
import { CardholdError } from '../shared/errors.ts';

/**
 * One custodian's Shamir share as text: `chs1.<seal id>.<index>.<share>.<checksum>`. The share bytes are
 * the `shamir-secret-sharing` format (the y values, then the x coordinate, which is the index). The
 * checksum (32 bits of SHA-256 over the rest) names a mistyped or truncated share at submission; a
 * deliberately forged share with a valid checksum is caught later by the sealed key's GCM tag.
 */
export interface KeyShare {
  sealId: string;
  index: number;
  bytes: Buffer;
}

const PREFIX = 'chs1';

function checksum(sealId: string, index: number, data: string): string {
  return createHash('sha256')
    .update(`${PREFIX}|${sealId}|${index}|${data}`)
    .digest()
    .subarray(0, 4)
    .toString('hex');
}

export function formatShare(sealId: string, bytes: Uint8Array): string {
  const index = bytes[bytes.length - 1] as number;
  const data = Buffer.from(bytes).toString('base64url');
  return [PREFIX, sealId, index, data, checksum(sealId, index, data)].join('.');
}

/** Parses and checks a share; never echoes it in the error. */
export function parseShare(text: string, expectedSealId: string, secretLength: number): KeyShare {
  const invalid = (detail: string) => new CardholdError('key_share_invalid', { field: 'share', detail });
  const parts = text.trim().split('.');
  if (parts.length !== 5 || parts[0] !== PREFIX)
    throw invalid('The share is not in the cardhold share format');
  const [, sealId, indexText, data, sum] = parts as [string, string, string, string, string];
  if (!/^[1-9]\d{0,2}$/.test(indexText) || Number(indexText) > 255)
    throw invalid('The share index is invalid');
  const index = Number(indexText);
  const expected = Buffer.from(checksum(sealId, index, data));
  const given = Buffer.from(sum);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw invalid(`Share ${index} fails its checksum: it was mistyped or corrupted`);
  }
  if (sealId !== expectedSealId) throw invalid(`Share ${index} belongs to another sealed key`);
  const bytes = Buffer.from(data, 'base64url');
  if (bytes.length !== secretLength + 1 || bytes[bytes.length - 1] !== index) {
    throw invalid(`Share ${index} has the wrong length or index`);
  }
  return { sealId, index, bytes };
}
