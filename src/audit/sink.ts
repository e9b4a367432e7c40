import { createWriteStream, type WriteStream } from 'node:fs';
import type { AuditRecord } from './events.ts';

/** A record as one JSON object: what the stream, the export and the admin API all emit. */
export function recordToJson(record: AuditRecord): Record<string, unknown> {
  return {
    type: 'cardhold.audit',
    seq: record.seq === undefined ? null : String(record.seq),
    lane: record.lane,
    lane_seq: record.laneSeq.toString(),
    time: record.occurredAt.toISOString(),
    actor: { type: record.actorType, id: record.actorId },
    action: record.action,
    resource: { type: record.resourceType, id: record.resourceId },
    merchant_id: record.merchantId,
    outcome: record.outcome,
    reason: record.reason,
    origin: record.origin,
    user_agent: record.userAgent,
    request_id: record.requestId,
    service: record.service,
    details: record.details,
    prev_hash: record.prevHash.toString('hex'),
    hash: record.hash.toString('hex'),
  };
}

export interface AuditSink {
  write(record: AuditRecord): void;
  close(): Promise<void>;
}

/**
 * Committed records as JSON lines, for Fluentd or Filebeat: to stdout (each line tagged
 * `"type":"cardhold.audit"`, so a collector can route it apart from application logs) or appended to a
 * file (mode 0600). The database stays the record of truth; the stream is the off-host copy.
 */
export function openAuditSink(kind: 'none' | 'stdout' | 'file', file?: string): AuditSink | undefined {
  if (kind === 'none' || (kind === 'file' && !file)) return undefined;
  if (kind === 'stdout') {
    return {
      write: (record) => process.stdout.write(`${JSON.stringify(recordToJson(record))}\n`),
      close: async () => undefined,
    };
  }
  const stream: WriteStream = createWriteStream(file as string, { flags: 'a', mode: 0o600 });
  return {
    write: (record) => stream.write(`${JSON.stringify(recordToJson(record))}\n`),
    close: () => new Promise<void>((resolve) => stream.end(resolve)),
  };
}
