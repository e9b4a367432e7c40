import type { Sql } from 'postgres';
import { hashContext, signingContext } from '../audit/audit-keys.ts';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { type AuditEvent, accessEvent } from '../audit/events.ts';
import { sessionKeyContext } from '../auth/operators/session-tokens.ts';
import { kekContext } from './key-hierarchy.ts';
import type { KeyActor } from './key-lifecycle.ts';
import type { KeyProvider, KeyPurpose } from './key-provider.ts';
import { sealingKeyContext } from './sealing-key.ts';

/**
 * Everything stored "wrapped by the key provider": key-encrypting keys, the audit hash and signing keys,
 * operator session-signing keys, the TOTP and webhook secret keys. Card data is never here: it sits one
 * level lower, under the key-encrypting keys, and master rotation does not touch it.
 */
interface WrappedKeyTable {
  table: string;
  column: 'wrapped_key' | 'wrapped_private_key';
  /** A text key that orders the rows (the job's cursor within one run). */
  rowKey: string;
  /** Rows that hold material (a retired key-encrypting key holds none). */
  live: string;
  context(row: Record<string, unknown>): string;
}

const env = (row: Record<string, unknown>) => String(row['environment']);
const num = (row: Record<string, unknown>, name: string) => Number(row[name]);

export const wrappedKeyTables: readonly WrappedKeyTable[] = [
  {
    table: 'vault.key_encryption_keys',
    column: 'wrapped_key',
    rowKey: `merchant_id || '/' || purpose || '/' || lpad(version::text, 10, '0')`,
    live: `state <> 'retired'`,
    context: (r) =>
      kekContext(String(r['merchant_id']), r['purpose'] as KeyPurpose, num(r, 'version'), env(r)),
  },
  {
    table: 'audit.hash_keys',
    column: 'wrapped_key',
    rowKey: `lpad(version::text, 10, '0')`,
    live: 'true',
    context: (r) => hashContext(num(r, 'version'), env(r)),
  },
  {
    table: 'audit.signing_keys',
    column: 'wrapped_private_key',
    rowKey: `lpad(version::text, 10, '0')`,
    live: 'true',
    context: (r) => signingContext(num(r, 'version'), env(r)),
  },
  {
    table: 'identity.session_keys',
    column: 'wrapped_private_key',
    rowKey: 'kid',
    live: 'true',
    context: (r) => sessionKeyContext(String(r['kid']), env(r)),
  },
  {
    table: 'identity.operator_totp_keys',
    column: 'wrapped_key',
    rowKey: `lpad(version::text, 10, '0')`,
    live: 'true',
    context: (r) => sealingKeyContext('operator-totp', num(r, 'version'), env(r)),
  },
  {
    table: 'webhooks.secret_keys',
    column: 'wrapped_key',
    rowKey: `lpad(version::text, 10, '0')`,
    live: 'true',
    context: (r) => sealingKeyContext('webhook-secret', num(r, 'version'), env(r)),
  },
];

export interface MasterDeps {
  /** The administrative connection (the CLI): the job updates tables no runtime role may change. */
  sql: Sql;
  provider: KeyProvider;
  trail: AuditTrail;
  who: KeyActor;
}

export interface MasterVersionRow {
  provider: string;
  version: string;
  environment: string;
  state: 'active' | 'decrypt_only' | 'retired';
  /** Null for a version the provider holds that was never registered (in use before any rotation). */
  created_at: Date | null;
  rotated_at: Date | null;
  retired_at: Date | null;
}

const masterResource = (provider: string, version: string) => ({
  type: 'master_key',
  id: `${provider}/${version}`,
});

async function audited<T>(
  deps: MasterDeps,
  work: (db: Sql) => Promise<{ result: T; events: AuditEvent[] }>,
): Promise<T> {
  return deps.trail.withLane((audit) =>
    deps.sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      const done = await work(db);
      if (done.events.length > 0) await audit.insert(db, done.events);
      return done.result;
    }),
  ) as Promise<T>;
}

/**
 * Makes `vault.master_key_versions` name the provider's current master version as active (the version
 * in use before any rotation is registered on first sight); any other active version becomes
 * decrypt-only from now (its grace starts). Returns the previous active version, if it changed.
 */
async function registerCurrent(db: Sql, provider: KeyProvider): Promise<string | undefined> {
  await db`select pg_advisory_xact_lock(hashtext('cardhold.master-key-versions'))`;
  const current = provider.masterVersion;
  const [active] = await db<MasterVersionRow[]>`
    select * from vault.master_key_versions where provider = ${provider.name} and state = 'active'`;
  if (active?.version === current) return undefined;
  if (active) {
    await db`
      update vault.master_key_versions set state = 'decrypt_only', rotated_at = now()
      where provider = ${provider.name} and version = ${active.version}`;
  }
  await db`
    insert into vault.master_key_versions (provider, version, environment, state)
    values (${provider.name}, ${current}, ${provider.environment}, 'active')
    on conflict (provider, version) do update set state = 'active', rotated_at = null`;
  // Older versions the provider still holds but nobody registered (made before, or by init-hsm --rotate).
  for (const version of provider.masterVersions()) {
    if (version === current) continue;
    await db`
      insert into vault.master_key_versions (provider, version, environment, state, rotated_at)
      values (${provider.name}, ${version}, ${provider.environment}, 'decrypt_only', now())
      on conflict (provider, version) do nothing`;
  }
  return active?.version;
}

/**
 * The master key's versions live with the provider (for local providers, a file each process reads,
 * changes and writes back): changes to them queue on one advisory lock, across processes and hosts
 * that share the database, so two rotations never both write a "next" version and lose one.
 */
function withMasterLock<T>(sql: Sql, change: () => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('cardhold.master-key-versions'))`;
    return change();
  }) as Promise<T>;
}

/**
 * `keys rotate --purpose master`: a new master key version wraps from now on (for aws-kms, the KMS key
 * newly configured in CARDHOLD_KMS_KEY_ID); the previous one becomes decrypt-only until the master
 * rewrap job has moved every wrapped key, and is then destroyed by `retireOldMasterVersions`.
 */
export async function rotateMasterKey(
  deps: MasterDeps,
): Promise<{ provider: string; version: string; previous: string | null }> {
  const { sql, provider } = deps;
  const before = provider.masterVersion;
  const [registered] = await sql<MasterVersionRow[]>`
    select * from vault.master_key_versions where provider = ${provider.name} and state = 'active'`;
  // With aws-kms the operator configures the new key; everywhere else the provider creates it here.
  const moved = registered !== undefined && registered.version !== before;
  const version = moved ? before : await withMasterLock(sql, () => provider.rotateMaster());
  const previous = moved ? (registered?.version ?? null) : before;
  return audited(deps, async (db) => {
    await registerCurrent(db, provider);
    if (previous !== null) {
      await db`
        insert into vault.master_key_versions (provider, version, environment, state, rotated_at)
        values (${provider.name}, ${previous}, ${provider.environment}, 'decrypt_only', now())
        on conflict (provider, version) do nothing`;
    }
    return {
      result: { provider: provider.name, version, previous },
      events: [
        accessEvent(deps.who, 'key.rotate', masterResource(provider.name, version), null, {
          details: { purpose: 'master', version, previous },
        }),
      ],
    };
  });
}

export interface MasterRewrapProgress {
  table: string;
  done: number;
  total: number;
}

export interface MasterRewrapResult {
  version: string;
  done: number;
  total: number;
  /** Wrapped keys that did not open (left as they are; their master version cannot be retired). */
  remaining: number;
}

/** Wrapped keys not yet under the current master version (NULL: written before migration 009). */
async function outstanding(sql: Sql, provider: KeyProvider, t: WrappedKeyTable): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from ${sql.unsafe(t.table)}
    where ${sql.unsafe(t.live)} and master_version is distinct from ${provider.masterVersion}`;
  return row?.n ?? 0;
}

/**
 * The master rewrap job: each wrapped key not yet under the current master version is unwrapped with
 * the version that wrapped it and wrapped again with the current one, and the row records that version.
 * The key itself does not change, so nothing below it (data keys, card data, hashes, signatures) is
 * touched. Rows go in batches, each one transaction that locks its rows (`FOR UPDATE SKIP LOCKED`) and
 * changes a row only if its wrapped key is still the one read. A row's `master_version` is its own
 * progress, so a killed job loses at most its batch in flight and a second run does only what is left:
 * resumable and idempotent. Progress is reported per batch; start and finish are audited.
 */
export async function runMasterRewrap(
  deps: MasterDeps,
  options: {
    batchSize?: number;
    onProgress?: (progress: MasterRewrapProgress) => void;
    /** Called after each committed batch (tests kill the job here). */
    afterBatch?: (batch: number) => void | Promise<void>;
  } = {},
): Promise<MasterRewrapResult> {
  const { sql, provider } = deps;
  const batchSize = options.batchSize ?? 100;
  const version = provider.masterVersion;
  await audited(deps, async (db) => ({ result: await registerCurrent(db, provider), events: [] }));
  const totals = await Promise.all(wrappedKeyTables.map((t) => outstanding(sql, provider, t)));
  const total = totals.reduce((a, b) => a + b, 0);
  if (total === 0) return { version, done: 0, total: 0, remaining: 0 };
  const resource = masterResource(provider.name, version);
  await deps.trail.record(
    accessEvent(deps.who, 'key.rewrap_start', resource, null, {
      details: { kind: 'master', purpose: 'master', version, total },
    }),
  );
  let done = 0;
  let batch = 0;
  for (const t of wrappedKeyTables) {
    let cursor = '';
    let tableDone = 0;
    const tableTotal = totals[wrappedKeyTables.indexOf(t)] ?? 0;
    for (;;) {
      const moved = await sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const rows = await db<Array<Record<string, unknown> & { row_key: string }>>`
          select *, ${db.unsafe(t.rowKey)} as row_key from ${db.unsafe(t.table)}
          where ${db.unsafe(t.live)} and master_version is distinct from ${version}
            and ${db.unsafe(t.rowKey)} > ${cursor}
          order by ${db.unsafe(t.rowKey)} limit ${batchSize}
          for update skip locked`;
        let count = 0;
        for (const row of rows) {
          const old = row[t.column] as Buffer;
          const context = t.context(row);
          let material: Buffer;
          try {
            material = await provider.unwrap(old, context);
          } catch {
            continue; // counted as remaining below; its master version stays referenced
          }
          let wrapped: Buffer;
          try {
            wrapped = await provider.wrap(material, context);
          } finally {
            material.fill(0);
          }
          const updated = await db`
            update ${db.unsafe(t.table)}
            set ${db.unsafe(t.column)} = ${wrapped}, master_version = ${provider.versionOf(wrapped)}
            where ${db.unsafe(t.rowKey)} = ${row.row_key} and ${db.unsafe(t.column)} = ${old}`;
          count += updated.count;
        }
        return { count, last: rows.at(-1)?.row_key };
      });
      if (moved.last === undefined) break;
      cursor = moved.last;
      done += moved.count;
      tableDone += moved.count;
      batch += 1;
      options.onProgress?.({ table: t.table, done: tableDone, total: tableTotal });
      await options.afterBatch?.(batch);
    }
  }
  const left = await Promise.all(wrappedKeyTables.map((t) => outstanding(sql, provider, t)));
  const remaining = left.reduce((a, b) => a + b, 0);
  await deps.trail.record(
    accessEvent(deps.who, 'key.rewrap_finish', resource, null, {
      details: { kind: 'master', purpose: 'master', version, done, remaining },
    }),
  );
  return { version, done, total, remaining };
}

/** How many wrapped keys a master version still wraps (unrecorded ones count against every version). */
export async function masterReferences(sql: Sql, version: string): Promise<number> {
  let n = 0;
  for (const t of wrappedKeyTables) {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from ${sql.unsafe(t.table)}
      where ${sql.unsafe(t.live)} and (master_version = ${version} or master_version is null)`;
    n += row?.n ?? 0;
  }
  return n;
}

/**
 * Destroys every old master version that nothing references any more and whose grace has passed (a
 * process that has not yet seen the rotation may still wrap with it). Returns what was retired and,
 * for each version kept, why.
 */
export async function retireOldMasterVersions(
  deps: MasterDeps,
  graceSeconds: number,
): Promise<{
  retired: Array<{ version: string; destroyed: boolean }>;
  kept: Array<{ version: string; reason: string }>;
}> {
  const { sql, provider } = deps;
  const retired: Array<{ version: string; destroyed: boolean }> = [];
  const kept: Array<{ version: string; reason: string }> = [];
  const rows = await sql<MasterVersionRow[]>`
    select * from vault.master_key_versions where provider = ${provider.name}`;
  for (const version of provider.masterVersions()) {
    if (version === provider.masterVersion) continue;
    const row = rows.find((r) => r.version === version);
    if (row?.state === 'retired') {
      kept.push({ version, reason: `retired; remove it from CARDHOLD_KMS_PREVIOUS_KEY_IDS` });
      continue;
    }
    const since = row?.rotated_at ? (Date.now() - row.rotated_at.getTime()) / 1000 : 0;
    if (since < graceSeconds) {
      kept.push({ version, reason: `rotated less than ${graceSeconds} seconds ago` });
      continue;
    }
    const references = await masterReferences(sql, version);
    if (references > 0) {
      kept.push({ version, reason: `${references} wrapped keys may still be under it; run the rewrap` });
      continue;
    }
    const destroyed = await withMasterLock(sql, () => provider.destroyMasterVersion(version));
    await audited(deps, async (db) => {
      await db`
        update vault.master_key_versions set state = 'retired', retired_at = now()
        where provider = ${provider.name} and version = ${version}`;
      return {
        result: undefined,
        events: [
          accessEvent(deps.who, 'key.retire', masterResource(provider.name, version), null, {
            details: { purpose: 'master', version, destroyed_in_provider: destroyed },
          }),
        ],
      };
    });
    // aws-kms: nothing uses the old KMS key any more; its deletion is scheduled in AWS by the operator.
    retired.push({ version, destroyed });
  }
  return { retired, kept };
}

/** Master versions for the inventory: the provider's, with the recorded state and dates. */
export async function masterVersionRows(sql: Sql, provider: KeyProvider): Promise<MasterVersionRow[]> {
  const rows = await sql<MasterVersionRow[]>`
    select * from vault.master_key_versions where provider = ${provider.name} order by created_at, version`;
  const listed = new Set(rows.map((r) => r.version));
  for (const version of provider.masterVersions()) {
    if (listed.has(version)) continue;
    rows.push({
      provider: provider.name,
      version,
      environment: provider.environment,
      state: version === provider.masterVersion ? 'active' : 'decrypt_only',
      created_at: null,
      rotated_at: null,
      retired_at: null,
    });
  }
  return rows;
}
