import type { KeyObject } from 'node:crypto';
import { hostname } from 'node:os';
import postgres, { type PendingQuery, type Row, type Sql } from 'postgres';
import { CardholdError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { NaturalBatcher } from '../shared/natural-batcher.ts';
import { redactPans } from '../shared/pan-detect.ts';
import { keyedHash } from './audit-keys.ts';
import type { AuditEvent, AuditRecord, DetailValue, Origin } from './events.ts';
import { GENESIS_HASH, recordHash } from './record-hash.ts';
import type { AuditSink } from './sink.ts';

/** Lanes 0-1023 are split between the services, so replicas of one service share a range. */
const LANE_RANGES: Record<string, number> = { vault: 0, api: 256, acquirer: 512, cli: 768 };
const LANES_PER_RANGE = 256;
const MAX_FIELD = 256;

interface Head {
  laneSeq: bigint;
  hash: Buffer;
}

interface Lane {
  id: number;
  head: Head | undefined;
}

/** Told about writes and failures; the platform connects it to metrics and the error log (PCI 10.7.2). */
export interface AuditObserver {
  recorded(record: AuditRecord): void;
  writeFailed(error: unknown): void;
}

/**
 * Appends to the audit trail inside a caller's statement or transaction. Records built through one
 * writer chain one after another in the writer's lane; the lane's head advances only once the caller's
 * work has committed.
 */
export interface LaneWriter {
  /** An INSERT of the events' records, to embed in a statement: `with audit as (${fragment}) …`. */
  fragment(db: Sql, events: AuditEvent[]): PendingQuery<Row[]>;
  /** Inserts the events' records now, on `db` (a transaction, to commit with the change). */
  insert(db: Sql, events: AuditEvent[]): Promise<void>;
  /**
   * An INSERT of the events' records that inserts all of them only if `condition` (an SQL boolean over
   * the statement's other CTEs) holds, and none otherwise; it returns one row per record inserted. When
   * it inserted none, call `discard` before writing anything else.
   */
  fragmentIf(db: Sql, events: AuditEvent[], condition: PendingQuery<Row[]>): PendingQuery<Row[]>;
  /** Forgets the records built so far: their statement inserted nothing, so the lane stays where it was. */
  discard(): void;
}

export interface AuditTrailOptions {
  sql: Sql;
  service: 'vault' | 'api' | 'acquirer' | 'cli';
  /** Undefined while the key provider is sealed (see `useHashKey`). */
  hashKey: { key: KeyObject; version: number } | undefined;
  lanes: number;
  logger: Logger;
  sink?: AuditSink | undefined;
  observer?: AuditObserver | undefined;
  now?: () => Date;
}

/**
 * The single way every capability records audit events (PCI DSS 10.2). Records are hash-chained per
 * lane; a process owns a few lanes so that concurrent requests do not queue behind one chain head, and
 * a unique (lane, lane_seq) makes a writer that raced another process for a lane retry on the new head.
 * Fail closed: when a record cannot be committed, the caller's change does not commit either and the
 * caller gets `audit_unavailable`.
 */
export class AuditTrail {
  readonly service: AuditTrailOptions['service'];
  readonly #sql: Sql;
  #hashKey: AuditTrailOptions['hashKey'];
  readonly #logger: Logger;
  readonly #sink: AuditSink | undefined;
  readonly #observers: AuditObserver[] = [];
  readonly #now: () => Date;
  readonly #free: Lane[];
  readonly #waiting: Array<(lane: Lane) => void> = [];
  readonly host = hostname();
  readonly lanes: number;
  readonly #recorder: NaturalBatcher<AuditEvent[], undefined>;

  constructor(options: AuditTrailOptions) {
    this.service = options.service;
    this.#sql = options.sql;
    this.#hashKey = options.hashKey;
    this.#logger = options.logger;
    this.#sink = options.sink;
    if (options.observer) this.#observers.push(options.observer);
    this.#now = options.now ?? (() => new Date());
    const lanes = Math.max(1, Math.min(options.lanes, 64));
    this.lanes = lanes;
    // Records that arrive together go out in one INSERT (one commit) per lane.
    this.#recorder = new NaturalBatcher({
      run: async (groups: AuditEvent[][]) => {
        await this.withLane((writer) => writer.insert(this.#sql, groups.flat()));
        return groups.map(() => ({ ok: true as const, value: undefined }));
      },
      concurrency: lanes,
      maxBatch: 100,
    });
    const base = LANE_RANGES[options.service] ?? 0;
    const offset = Math.floor(Math.random() * LANES_PER_RANGE);
    this.#free = Array.from({ length: lanes }, (_, i) => ({
      id: base + ((offset + i) % LANES_PER_RANGE),
      head: undefined,
    }));
  }

  observe(observer: AuditObserver): void {
    this.#observers.push(observer);
  }

  /** A keyed hash for a sensitive value that an investigator may need to correlate (never the value). */
  keyedHash(value: string): string {
    // While the key provider is sealed there is no hash key: the value is dropped, never stored plain.
    return this.#hashKey ? keyedHash(this.#hashKey, value) : 'unhashed-while-sealed';
  }

  /** Sets the hash key once a sealed key provider is unsealed. */
  useHashKey(key: { key: KeyObject; version: number }): void {
    this.#hashKey = key;
  }

  /** The origin of the service's own actions: its host and process. */
  get selfOrigin(): Origin {
    return {
      origin: `host:${this.host}`,
      userAgent: `cardhold-${this.service} pid ${process.pid}`,
      requestId: 'internal',
    };
  }

  /** The service itself as an actor, for what it does on its own (the demo merchant, key creation). */
  get selfAccess(): { actor: { type: 'service'; id: string }; origin: Origin } {
    return { actor: { type: 'service', id: `cardhold-${this.service}` }, origin: this.selfOrigin };
  }

  /**
   * Records events on their own, committed before this returns. Concurrent calls share a statement;
   * never call this while holding a lane (inside `withLane`), which could wait for a lane forever.
   */
  async record(...events: AuditEvent[]): Promise<void> {
    await this.#recorder.submit(events);
  }

  /**
   * Runs `work` holding a lane; whatever `work` appends through the writer commits with it or not at
   * all. `work` may run again if another process extended the lane first, so it must not have effects
   * outside its statement or transaction before its audit insert.
   */
  async withLane<T>(work: (writer: LaneWriter) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const lane = await this.#acquire();
      const pending: AuditRecord[] = [];
      try {
        if (!lane.head) lane.head = await this.#loadHead(lane.id);
        const result = await work(this.#writer(lane, pending));
        const last = pending.at(-1);
        if (last) {
          lane.head = { laneSeq: last.laneSeq, hash: last.hash };
          for (const record of pending) this.#emit(record);
        }
        return result;
      } catch (error) {
        if (pending.length > 0) lane.head = undefined;
        if (isLaneRace(error) && attempt < 5) continue;
        if (pending.length > 0 && isAuditWriteFailure(error)) {
          this.#failed(error);
          throw new CardholdError('audit_unavailable', { cause: error });
        }
        throw error;
      } finally {
        this.#release(lane);
      }
    }
  }

  #writer(lane: Lane, pending: AuditRecord[]): LaneWriter {
    const build = (events: AuditEvent[]) =>
      events.map((event) => {
        const previous = pending.at(-1) ?? (lane.head as Head);
        const record = this.#build(lane.id, previous, event);
        pending.push(record);
        return record;
      });
    return {
      fragment: (db, events) => insertStatement(db, build(events)),
      insert: async (db, events) => {
        await insertStatement(db, build(events));
      },
      fragmentIf: (db, events, condition) => insertWhereStatement(db, build(events), condition),
      discard: () => {
        pending.length = 0;
      },
    };
  }

  #build(lane: number, previous: Head, event: AuditEvent): AuditRecord {
    const occurredAt = new Date(Math.floor(this.#now().getTime()));
    const record: Omit<AuditRecord, 'hash'> = {
      lane,
      laneSeq: previous.laneSeq + 1n,
      occurredAt,
      actorType: event.actor.type,
      actorId: clean(event.actor.id) as string,
      action: event.action,
      resourceType: event.resource.type,
      resourceId: clean(event.resource.id) as string,
      merchantId: event.merchantId,
      outcome: event.outcome,
      reason: clean(event.reason ?? null),
      origin: clean(event.origin.origin) as string,
      userAgent: clean(event.origin.userAgent),
      requestId: clean(event.origin.requestId) as string,
      service: this.service,
      details: cleanDetails(event.details ?? {}),
      prevHash: previous.hash,
    };
    return { ...record, hash: recordHash(record) };
  }

  async #loadHead(lane: number): Promise<Head> {
    try {
      const rows = await this.#sql<{ lane_seq: string; hash: Buffer }[]>`
        select lane_seq, hash from audit.records where lane = ${lane} order by lane_seq desc limit 1`;
      const row = rows[0];
      return row ? { laneSeq: BigInt(row.lane_seq), hash: row.hash } : { laneSeq: 0n, hash: GENESIS_HASH };
    } catch (error) {
      this.#failed(error);
      throw new CardholdError('audit_unavailable', { cause: error });
    }
  }

  #emit(record: AuditRecord): void {
    try {
      this.#sink?.write(record);
    } catch (error) {
      this.#logger.error({ err: { message: String(error) } }, 'audit stream write failed');
    }
    for (const observer of this.#observers) observer.recorded(record);
  }

  #failed(error: unknown): void {
    for (const observer of this.#observers) observer.writeFailed(error);
  }

  #acquire(): Promise<Lane> {
    const lane = this.#free.pop();
    if (lane) return Promise.resolve(lane);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(lane: Lane): void {
    const next = this.#waiting.shift();
    if (next) next(lane);
    else this.#free.push(lane);
  }

  async close(): Promise<void> {
    await this.#sink?.close();
  }
}

/** A record as the columns of audit.records (all but the identity `seq`). */
export function recordToRow(db: Sql, r: AuditRecord) {
  return {
    lane: r.lane,
    lane_seq: r.laneSeq.toString(),
    occurred_at: r.occurredAt,
    actor_type: r.actorType,
    actor_id: r.actorId,
    action: r.action,
    resource_type: r.resourceType,
    resource_id: r.resourceId,
    merchant_id: r.merchantId,
    outcome: r.outcome,
    reason: r.reason,
    origin: r.origin,
    user_agent: r.userAgent,
    request_id: r.requestId,
    service: r.service,
    details: db.json(r.details),
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}

function insertStatement(db: Sql, records: AuditRecord[]): PendingQuery<Row[]> {
  return db`insert into audit.records ${db(records.map((r) => recordToRow(db, r)))}`;
}

/**
 * The records as one array per column (one statement text whatever their number), inserted only when
 * `condition` holds. Timestamps, sequence numbers and hashes travel as text and are decoded in SQL.
 */
function insertWhereStatement(
  db: Sql,
  records: AuditRecord[],
  condition: PendingQuery<Row[]>,
): PendingQuery<Row[]> {
  const column = <T>(pick: (r: AuditRecord) => T) => records.map(pick);
  return db`
    insert into audit.records (lane, lane_seq, occurred_at, actor_type, actor_id, action, resource_type,
      resource_id, merchant_id, outcome, reason, origin, user_agent, request_id, service, details, prev_hash, hash)
    select lane, lane_seq::bigint, occurred_at::timestamptz, actor_type, actor_id, action, resource_type,
      resource_id, merchant_id, outcome, reason, origin, user_agent, request_id, service, details::jsonb,
      decode(prev_hash, 'hex'), decode(hash, 'hex')
    from unnest(${column((r) => r.lane)}::int[], ${column((r) => r.laneSeq.toString())}::text[],
      ${column((r) => r.occurredAt.toISOString())}::text[], ${column((r) => r.actorType)}::text[],
      ${column((r) => r.actorId)}::text[], ${column((r) => r.action)}::text[],
      ${column((r) => r.resourceType)}::text[], ${column((r) => r.resourceId)}::text[],
      ${column((r) => r.merchantId)}::text[], ${column((r) => r.outcome)}::text[],
      ${column((r) => r.reason)}::text[], ${column((r) => r.origin)}::text[],
      ${column((r) => r.userAgent)}::text[], ${column((r) => r.requestId)}::text[],
      ${column((r) => r.service)}::text[], ${column((r) => JSON.stringify(r.details))}::text[],
      ${column((r) => r.prevHash.toString('hex'))}::text[], ${column((r) => r.hash.toString('hex'))}::text[])
      as r(lane, lane_seq, occurred_at, actor_type, actor_id, action, resource_type, resource_id,
        merchant_id, outcome, reason, origin, user_agent, request_id, service, details, prev_hash, hash)
    where ${condition}
    returning 1`;
}

/** Detail strings pass the same guard: a stated reason, say, is typed by a person. */
function cleanDetails(details: Record<string, DetailValue>): Record<string, DetailValue> {
  const out: Record<string, DetailValue> = {};
  for (const [key, value] of Object.entries(details))
    out[key] = typeof value === 'string' ? clean(value) : value;
  return out;
}

/**
 * Bounded, never a card number, and text PostgreSQL's json can hold, whatever a client put in a header,
 * a path or a reason: the cut never splits a character (half of an emoji is a lone surrogate, which
 * json refuses, failing every record of a shared statement), and NUL goes.
 */
function clean(value: string | null): string | null {
  if (value === null) return null;
  let text = value.length > MAX_FIELD ? value.slice(0, MAX_FIELD) : value;
  if (!text.isWellFormed()) text = text.toWellFormed();
  if (text.includes('\u0000')) text = text.replaceAll('\u0000', '\uFFFD');
  return redactPans(text);
}

function isLaneRace(error: unknown): boolean {
  return (
    error instanceof postgres.PostgresError &&
    error.code === '23505' &&
    error.constraint_name === 'records_lane_lane_seq_key'
  );
}

/**
 * A database error that the audit insert caused: a refused privilege or a trigger on the trail, or any
 * error that names it. Other database errors (a constraint of the caller's table) pass through.
 */
function isAuditWriteFailure(error: unknown): boolean {
  if (!(error instanceof postgres.PostgresError)) return false;
  if (error.schema_name === 'audit') return true;
  return /\baudit\b|\brecords\b/.test(error.message);
}
