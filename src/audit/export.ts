import type { Sql } from 'postgres';
import { CardholdError } from '../shared/errors.ts';
import type { AuditRecord } from './events.ts';
import { recordToJson } from './sink.ts';
import { recordColumns, rowToRecord } from './verify.ts';

export interface TimeRange {
  from: Date;
  to: Date;
}

function checkRange(range: TimeRange): void {
  if (Number.isNaN(range.from.getTime()) || Number.isNaN(range.to.getTime()) || range.from >= range.to) {
    throw new CardholdError('audit_range_invalid', {
      field: 'from',
      detail: 'from must be a time before to',
    });
  }
}

/**
 * One page of records in [from, to), in sequence order: the order pages continue in (`after_seq`).
 * Writers on several lanes and services commit out of clock order, so a later sequence number can carry
 * an earlier time: ordered by time but continued by sequence, pages would skip some records and repeat
 * others.
 */
export async function readRecords(
  sql: Sql,
  options: TimeRange & { afterSeq?: string | undefined; limit: number },
): Promise<AuditRecord[]> {
  checkRange(options);
  const rows = await sql`
    select ${sql.unsafe(recordColumns)} from audit.records
    where occurred_at >= ${options.from} and occurred_at < ${options.to}
      ${options.afterSeq ? sql`and seq > ${options.afterSeq}` : sql``}
    order by seq limit ${options.limit}`;
  return rows.map((row) => rowToRecord(row as never));
}

/** Every record in [from, to) as JSON lines, streamed with a cursor; returns how many. */
export async function exportRecords(
  sql: Sql,
  range: TimeRange,
  write: (line: string) => void | Promise<void>,
): Promise<number> {
  checkRange(range);
  let count = 0;
  await sql`
    select ${sql.unsafe(recordColumns)} from audit.records
    where occurred_at >= ${range.from} and occurred_at < ${range.to}
    order by occurred_at, seq`.cursor(1000, async (rows) => {
    for (const row of rows) {
      await write(`${JSON.stringify(recordToJson(rowToRecord(row as never)))}\n`);
      count++;
    }
  });
  return count;
}
