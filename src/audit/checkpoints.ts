import { hash } from 'node:crypto';
import type { Sql } from 'postgres';
import type { Logger } from '../shared/logger.ts';
import type { CheckpointSigner } from './audit-keys.ts';

/** What a checkpoint signs: the head of every lane, and the previous checkpoint (so none can vanish). */
export interface CheckpointStatement {
  v: 1;
  created_at: string;
  key_version: number;
  /** [lane, lane_seq, hash hex] for every lane, in lane order. */
  lanes: Array<[number, string, string]>;
  /** SHA-256 hex of the previous checkpoint's statement and signature, or null for the first. */
  prev: string | null;
}

export const checkpointLink = (statement: Buffer, signature: Buffer) =>
  hash('sha256', Buffer.concat([statement, signature]), 'hex');

/** The last record of every lane, found by a skip scan over the (lane, lane_seq) index. */
export async function laneHeads(sql: Sql): Promise<Array<[number, string, string]>> {
  const rows = await sql<{ lane: number; lane_seq: string; hash: Buffer }[]>`
    with recursive lanes(lane) as (
      select min(lane) from audit.records
      union all
      select (select min(r.lane) from audit.records r where r.lane > lanes.lane) from lanes where lanes.lane is not null
    )
    select l.lane, h.lane_seq, h.hash from lanes l
    cross join lateral (
      select lane_seq, hash from audit.records r where r.lane = l.lane order by lane_seq desc limit 1
    ) h
    where l.lane is not null
    order by l.lane`;
  return rows.map((r) => [r.lane, String(r.lane_seq), r.hash.toString('hex')]);
}

export interface CheckpointerOptions {
  sql: Sql;
  signer: CheckpointSigner;
  everyRecords: number;
  everySeconds: number;
  logger: Logger;
  onFailure: (error: unknown) => void;
  now?: () => Date;
}

/**
 * Signs the chain heads every N records written here or every T seconds, whichever comes first, when
 * anything changed. Replicas serialise on an advisory lock so that checkpoints form one chain.
 */
export class Checkpointer {
  readonly #options: CheckpointerOptions;
  #sinceLast = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(options: CheckpointerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer = setInterval(() => void this.checkpoint(), this.#options.everySeconds * 1000);
    this.#timer.unref();
  }

  /** Counts records written by this process; the N-th triggers a checkpoint. */
  noteRecord(): void {
    this.#sinceLast++;
    if (this.#sinceLast >= this.#options.everyRecords) void this.checkpoint();
  }

  /** Signs now (coalesced with one already running); failures are reported, never thrown. */
  checkpoint(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#sinceLast = 0;
    this.#running = this.#sign()
      .catch((error: unknown) => this.#options.onFailure(error))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          void this.checkpoint();
        }
      });
    return this.#running;
  }

  async #sign(): Promise<void> {
    const { sql, signer } = this.#options;
    await sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      await db`select pg_advisory_xact_lock(hashtext('cardhold.audit.checkpoint'))`;
      const lanes = await laneHeads(db);
      if (lanes.length === 0) return;
      const previous = await db<{ statement: Buffer; signature: Buffer }[]>`
        select statement, signature from audit.checkpoints order by id desc limit 1`;
      const last = previous[0];
      if (last) {
        const lastLanes = (JSON.parse(last.statement.toString('utf8')) as CheckpointStatement).lanes;
        if (JSON.stringify(lastLanes) === JSON.stringify(lanes)) return;
      }
      const createdAt = (this.#options.now ?? (() => new Date()))();
      const statement: CheckpointStatement = {
        v: 1,
        created_at: createdAt.toISOString(),
        key_version: signer.version,
        lanes,
        prev: last ? checkpointLink(last.statement, last.signature) : null,
      };
      const bytes = Buffer.from(JSON.stringify(statement), 'utf8');
      const signature = signer.sign(bytes);
      await db`
        insert into audit.checkpoints (created_at, statement, key_version, signature)
        values (${createdAt}, ${bytes}, ${signer.version}, ${signature})`;
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
    // A last checkpoint covers what was written since the previous one.
    await this.checkpoint();
  }
}
