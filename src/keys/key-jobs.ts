import type { Sql } from 'postgres';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { accessEvent } from '../audit/events.ts';
import { CardholdError, isCardholdError } from '../shared/errors.ts';
import { Secret } from '../shared/secret.ts';
import { fingerprintOf, panAad } from '../vault/card-record.ts';
import { openRecord, rewrapDataKey } from './envelope.ts';
import type { KeyHierarchy } from './key-hierarchy.ts';
import type { KeyActor } from './key-lifecycle.ts';

/**
 * `rewrap`: moves each record's data key to the newest PAN key version. The data key is unwrapped and
 * wrapped again; the card data itself is never decrypted, and the ciphertext's AAD keeps naming the
 * version it was sealed under (`aad_version`).
 *
 * `refingerprint`: fingerprints cannot be rewrapped (an HMAC under a new key cannot be derived from the
 * old one), so this job opens each record inside the vault process, computes the HMAC under the newest
 * fingerprint key and writes it. Card data exists only in buffers zeroed at once (and the parsed string
 * this process holds for the HMAC).
 */
export type KeyJobKind = 'rewrap' | 'refingerprint';

export interface KeyJobProgress {
  kind: KeyJobKind;
  merchant_id: string;
  target_version: number;
  pass: number;
  done: number;
  total: number;
}

export interface KeyJobResult extends KeyJobProgress {
  /** Whether a job ran (false: nothing was under an old version). */
  ran: boolean;
  /** Records still under an old version after the last pass: they failed to open or arrived late. */
  remaining: number;
}

export interface KeyJobOptions {
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (progress: KeyJobProgress) => void;
  /** Called after each committed batch (tests kill the job here). */
  afterBatch?: (batch: number) => void | Promise<void>;
}

interface JobRow {
  id: string;
  target_version: number;
  state: string;
  cursor: string;
  pass: number;
  done: string;
  total: string;
}

interface TokenKeyRow {
  id: string;
  ciphertext: Buffer;
  wrapped_dek: Buffer;
  kek_version: number;
  aad_version: number;
  fingerprint_version: number;
}

/** A late writer (a process that had not yet seen the rotation) can add rows behind the cursor. */
const MAX_PASSES = 3;

const plan = {
  rewrap: { purpose: 'pan', column: 'kek_version' },
  refingerprint: { purpose: 'fingerprint', column: 'fingerprint_version' },
} as const;

/**
 * Runs (or resumes) a merchant's job. Rows go in primary-key order in batches; each batch locks its
 * rows (`FOR UPDATE SKIP LOCKED`: a row being deleted or changed is left for a later pass), changes
 * only rows still under the version it read (`WHERE <version> = old`) and advances the persisted cursor
 * in the same transaction. Killing the job at any point loses at most the batch in flight, which
 * rolls back whole; running it again resumes from the cursor. Every record stays readable throughout.
 */
export async function runKeyJob(
  deps: { sql: Sql; keys: KeyHierarchy; trail: AuditTrail; who: KeyActor },
  kind: KeyJobKind,
  merchantId: string,
  options: KeyJobOptions = {},
): Promise<KeyJobResult> {
  const { sql, keys, trail, who } = deps;
  const { purpose, column } = plan[kind];
  const batchSize = options.batchSize ?? 200;
  const [active] = await sql<{ version: number }[]>`
    select version from vault.key_encryption_keys
    where merchant_id = ${merchantId} and purpose = ${purpose} and state = 'active'`;
  const idle = { kind, merchant_id: merchantId, pass: 0, done: 0, total: 0, ran: false, remaining: 0 };
  if (!active) return { ...idle, target_version: 0 };
  const target = active.version;
  const outstanding = async () => {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from vault.tokens where merchant_id = ${merchantId} and ${sql(column)} <> ${target}`;
    return row?.n ?? 0;
  };

  let job = await resumeOrStart();
  if (!job) return { ...idle, target_version: target };
  const resource = { type: 'key_job', id: `${kind}/${merchantId}/${job.id}` };
  const progress = (): KeyJobProgress => ({
    kind,
    merchant_id: merchantId,
    target_version: target,
    pass: job?.pass ?? 0,
    done: Number(job?.done ?? 0),
    total: Number(job?.total ?? 0),
  });

  for (let batch = 1; ; batch++) {
    options.signal?.throwIfAborted();
    const moved = await sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      // Serialises runners of the same job; the cursor is read under the lock.
      const [current] = await db<
        JobRow[]
      >`select * from vault.key_jobs where id = ${job?.id ?? ''} for update`;
      if (!current) throw new Error('the key job disappeared');
      // Another runner may have re-aimed this job at a newer version, or finished it, since this one
      // started; and the version this runner writes under may have been retired. Writing on would move
      // data keys under a key that no longer exists. The target's row is held (FOR SHARE) until the
      // batch commits, so a retirement (FOR UPDATE) waits for it.
      const [key] = await db<{ state: string }[]>`
        select state from vault.key_encryption_keys
        where merchant_id = ${merchantId} and purpose = ${purpose} and version = ${target} for share`;
      if (current.state !== 'running' || current.target_version !== target || key?.state !== 'active') {
        throw new CardholdError('key_job_superseded', {
          detail: `The ${kind} job moved on to another version (or finished) while this run held version ${target}; run it again`,
        });
      }
      const rows = await db<TokenKeyRow[]>`
        select id, ciphertext, wrapped_dek, kek_version, aad_version, fingerprint_version from vault.tokens
        where merchant_id = ${merchantId} and id > ${current.cursor} and ${db(column)} <> ${target}
        order by id limit ${batchSize}
        for update skip locked`;
      const last = rows.at(-1);
      if (!last) return { job: current, count: 0 };
      let count = 0;
      for (const row of rows) {
        const change = await transform(kind, keys, merchantId, target, row);
        if (!change) continue;
        const updated =
          kind === 'rewrap'
            ? await db`
                update vault.tokens set wrapped_dek = ${change}, kek_version = ${target}
                where merchant_id = ${merchantId} and id = ${row.id} and kek_version = ${row.kek_version}`
            : await db`
                update vault.tokens set fingerprint = ${change}, fingerprint_version = ${target}
                where merchant_id = ${merchantId} and id = ${row.id}
                  and fingerprint_version = ${row.fingerprint_version}`;
        count += updated.count;
      }
      const [next] = await db<JobRow[]>`
        update vault.key_jobs set cursor = ${last.id}, done = done + ${count}, updated_at = now()
        where id = ${current.id} returning *`;
      return { job: next as JobRow, count: rows.length };
    });
    job = moved.job;
    if (moved.count > 0) {
      options.onProgress?.(progress());
      await options.afterBatch?.(batch);
      continue;
    }
    const remaining = await outstanding();
    if (remaining > 0 && job.pass < MAX_PASSES) {
      const [again] = await sql<JobRow[]>`
        update vault.key_jobs set cursor = '', pass = pass + 1, updated_at = now() where id = ${job.id} returning *`;
      job = again as JobRow;
      continue;
    }
    const finished = job;
    await trail.withLane((audit) =>
      sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        await db`update vault.key_jobs set state = 'finished', finished_at = now(), updated_at = now() where id = ${finished.id}`;
        await audit.insert(db, [
          accessEvent(who, 'key.rewrap_finish', resource, merchantId, {
            details: { kind, purpose, version: target, done: Number(finished.done), remaining },
          }),
        ]);
      }),
    );
    return { ...progress(), ran: true, remaining };
  }

  /** The running job of this kind (re-aimed if a newer version appeared), or a new one. */
  async function resumeOrStart(): Promise<JobRow | undefined> {
    const [running] = await sql<JobRow[]>`
      select * from vault.key_jobs where kind = ${kind} and merchant_id = ${merchantId} and state = 'running'`;
    if (running) {
      if (running.target_version === target) return running;
      const [reaimed] = await sql<JobRow[]>`
        update vault.key_jobs set target_version = ${target}, cursor = '', pass = 1, total = ${await outstanding()},
          updated_at = now()
        where id = ${running.id} returning *`;
      return reaimed;
    }
    const total = await outstanding();
    if (total === 0) return undefined;
    const started = trail.withLane((audit) =>
      sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const [created] = await db<JobRow[]>`
          insert into vault.key_jobs (kind, merchant_id, target_version, state, total)
          values (${kind}, ${merchantId}, ${target}, 'running', ${total}) returning *`;
        const row = created as JobRow;
        await audit.insert(db, [
          accessEvent(
            who,
            'key.rewrap_start',
            { type: 'key_job', id: `${kind}/${merchantId}/${row.id}` },
            merchantId,
            {
              details: { kind, purpose, version: target, total },
            },
          ),
        ]);
        return row;
      }),
    );
    // Another runner started the job a moment before this one (one running job per kind and merchant):
    // join it rather than fail.
    return started.catch((error: unknown) => {
      if ((error as { constraint_name?: unknown }).constraint_name === 'key_jobs_one_running') {
        return resumeOrStart();
      }
      throw error;
    });
  }
}

/**
 * The new wrapped data key (rewrap) or fingerprint (refingerprint) of one record; undefined when the
 * record does not open (it stays where it is, counted as remaining, and keeps its old version from
 * being retired).
 */
async function transform(
  kind: KeyJobKind,
  keys: KeyHierarchy,
  merchantId: string,
  target: number,
  row: TokenKeyRow,
): Promise<Buffer | undefined> {
  try {
    const aad = panAad(merchantId, row.id, row.aad_version);
    const kek = await keys.version(merchantId, 'pan', row.kek_version);
    if (kind === 'rewrap') {
      return rewrapDataKey(kek, await keys.version(merchantId, 'pan', target), row.wrapped_dek, aad);
    }
    const plain = openRecord(kek, { ciphertext: row.ciphertext, wrappedDataKey: row.wrapped_dek }, aad);
    let pan: Secret<string>;
    try {
      pan = new Secret((JSON.parse(plain.toString('utf8')) as { pan: string }).pan);
    } finally {
      plain.fill(0);
    }
    return fingerprintOf(await keys.version(merchantId, 'fingerprint', target), pan);
  } catch (error) {
    if (isCardholdError(error) && error.code === 'token_integrity_failed') return undefined;
    throw error;
  }
}
