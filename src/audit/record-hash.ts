import { hash } from 'node:crypto';
import type { AuditRecord, DetailValue } from './events.ts';

export const GENESIS_HASH = Buffer.alloc(32);

/** Object keys sorted, so that a jsonb round trip (which reorders keys) encodes the same. */
function canonicalDetails(details: Record<string, DetailValue>): Array<[string, DetailValue]> {
  return Object.keys(details)
    .sort()
    .map((key) => [key, details[key] ?? null]);
}

/**
 * The canonical encoding a record's hash covers: every field except the database's global sequence
 * number, in a fixed order, as a JSON array (strings, integers and null only, which JSON encodes one
 * way), prefixed with a version tag. The previous record's hash makes it a chain.
 */
export function canonicalEncoding(record: Omit<AuditRecord, 'hash' | 'seq'>): string {
  return `cardhold-audit-v1\n${JSON.stringify([
    record.lane,
    record.laneSeq.toString(),
    record.occurredAt.toISOString(),
    record.actorType,
    record.actorId,
    record.action,
    record.resourceType,
    record.resourceId,
    record.merchantId,
    record.outcome,
    record.reason,
    record.origin,
    record.userAgent,
    record.requestId,
    record.service,
    canonicalDetails(record.details),
    record.prevHash.toString('hex'),
  ])}`;
}

export function recordHash(record: Omit<AuditRecord, 'hash' | 'seq'>): Buffer {
  return hash('sha256', canonicalEncoding(record), 'buffer');
}
