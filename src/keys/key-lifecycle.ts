import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { Sql } from 'postgres';
import { hashContext, signingContext } from '../audit/audit-keys.ts';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { type Actor, type AuditEvent, accessEvent, type DetailValue, type Origin } from '../audit/events.ts';
import { CardholdError } from '../shared/errors.ts';
import { CVV_TTL_HARD_CAP_SECONDS } from '../vault/cvv-slots.ts';
import { KEY_CACHE_SECONDS, type KeyHierarchy, kekContext } from './key-hierarchy.ts';
import type { KeyProvider, KeyPurpose } from './key-provider.ts';

/** Who performs a lifecycle action, for its audit record. */
export interface KeyActor {
  actor: Actor;
  origin: Origin;
}

/** The purposes `cardhold keys rotate` accepts: the merchant key purposes and the audit trail's keys. */
export type RotatablePurpose = KeyPurpose | 'audit';
export const rotatablePurposes: readonly RotatablePurpose[] = ['pan', 'cvv', 'fingerprint', 'audit'];

/**
 * How long after a rotation an old version may be retired: every process learns of the rotation within
 * KEY_CACHE_SECONDS, so after twice that no write can still be using the old version.
 */
export const RETIRE_GRACE_SECONDS = 2 * KEY_CACHE_SECONDS;

export interface RotatedKey {
  merchant_id: string | null;
  purpose: RotatablePurpose;
  version: number;
  previous: number | null;
}

interface VersionRow {
  version: number;
  state: string;
  rotated_at: Date | null;
  compromised_at: Date | null;
}

/**
 * Rotation, retirement and compromise of key versions. Each change commits together with its audit
 * record. A version's life: active (encrypts new data) → decrypt_only (after rotation; the rewrap or
 * re-fingerprint job moves what it protects) → retired (nothing references it; its wrapped material is
 * destroyed, so it can never decrypt again).
 */
export class KeyLifecycle {
  readonly #sql: Sql;
  readonly #provider: KeyProvider;
  readonly #trail: AuditTrail;
  readonly #keys: KeyHierarchy | undefined;
  readonly #graceSeconds: number;

  constructor(deps: {
    sql: Sql;
    provider: KeyProvider;
    trail: AuditTrail;
    /** This process's hierarchy, whose cache is dropped after each change. */
    keys?: KeyHierarchy;
    /** Tests shorten the wait between rotation and retirement; production keeps the default. */
    retireGraceSeconds?: number;
  }) {
    this.#sql = deps.sql;
    this.#provider = deps.provider;
    this.#trail = deps.trail;
    this.#keys = deps.keys;
    this.#graceSeconds = deps.retireGraceSeconds ?? RETIRE_GRACE_SECONDS;
  }

  /**
   * A new version that new writes use; the previous active version becomes decrypt-only. Merchant keys
   * need a merchant; `audit` rotates the deployment's audit hashing and checkpoint-signing keys.
   */
  async rotate(
    who: KeyActor,
    purpose: RotatablePurpose,
    merchantId: string | undefined,
    details: Record<string, DetailValue> = {},
  ): Promise<RotatedKey> {
    if (purpose === 'audit') return this.#rotateAudit(who);
    if (!merchantId) throw new CardholdError('merchant_not_found', { field: 'merchant' });
    const rotated = await this.#change(async (db) => {
      // Rotations of one key queue here: the row lock below holds nothing when there is no version yet,
      // and two first rotations would both pick version 1.
      await db`select pg_advisory_xact_lock(hashtext(${`kek|${merchantId}|${purpose}`}))`;
      const rows = await db<VersionRow[]>`
        select version, state, rotated_at, compromised_at from vault.key_encryption_keys
        where merchant_id = ${merchantId} and purpose = ${purpose} order by version for update`;
      const previous = rows.find((r) => r.state === 'active')?.version ?? null;
      const version = (rows.at(-1)?.version ?? 0) + 1;
      const wrapped = await this.#wrap(
        randomBytes(32),
        kekContext(merchantId, purpose, version, this.#provider.environment),
      );
      await db`
        update vault.key_encryption_keys set state = 'decrypt_only', rotated_at = now()
        where merchant_id = ${merchantId} and purpose = ${purpose} and state = 'active'`;
      await db`
        insert into vault.key_encryption_keys (merchant_id, purpose, version, wrapped_key, provider, environment, master_version)
        values (${merchantId}, ${purpose}, ${version}, ${wrapped}, ${this.#provider.name}, ${this.#provider.environment},
          ${this.#provider.versionOf(wrapped)})`;
      const result: RotatedKey = { merchant_id: merchantId, purpose, version, previous };
      return {
        result,
        events: [
          accessEvent(who, 'key.rotate', kekResource(merchantId, purpose, version), merchantId, {
            details: { purpose, version, previous, ...details },
          }),
        ],
      };
    });
    return rotated;
  }

  /**
   * How many records still need a version: data keys wrapped by a PAN version, fingerprints computed
   * with a fingerprint version. A CVV version protects slots that live at most an hour, which the
   * volatile store cannot be asked about, so it counts as referenced until that hour (and the cache
   * grace) has passed since its rotation.
   */
  async references(
    merchantId: string,
    purpose: KeyPurpose,
    version: number,
    db: Sql = this.#sql,
  ): Promise<number> {
    if (purpose === 'pan') {
      const [row] = await db<{ n: number }[]>`
        select count(*)::int as n from vault.tokens where merchant_id = ${merchantId} and kek_version = ${version}`;
      return row?.n ?? 0;
    }
    if (purpose === 'fingerprint') {
      const [row] = await db<{ n: number }[]>`
        select count(*)::int as n from vault.tokens
        where merchant_id = ${merchantId} and fingerprint_version = ${version}`;
      return row?.n ?? 0;
    }
    return 0;
  }

  /**
   * Retires a decrypt-only version that nothing references: its wrapped material is destroyed. Refused
   * (`key_version_in_use`) for the active version, while records remain under it, and before the grace
   * after rotation has passed (a process may still hold the old version as active).
   */
  async retire(who: KeyActor, merchantId: string, purpose: KeyPurpose, version: number): Promise<void> {
    await this.#change(async (db) => {
      const [row] = await db<VersionRow[]>`
        select version, state, rotated_at, compromised_at from vault.key_encryption_keys
        where merchant_id = ${merchantId} and purpose = ${purpose} and version = ${version} for update`;
      if (!row) throw new CardholdError('key_version_not_found');
      if (row.state === 'retired') return { result: undefined, events: [] };
      const refused = await this.#whyNotRetirable(db, merchantId, purpose, row);
      if (refused) throw new CardholdError('key_version_in_use', { detail: refused });
      await db`
        update vault.key_encryption_keys
        set state = 'retired', wrapped_key = ${Buffer.alloc(0)}, retired_at = now()
        where merchant_id = ${merchantId} and purpose = ${purpose} and version = ${version}`;
      const action = row.compromised_at ? 'key.destroy' : 'key.retire';
      return {
        result: undefined,
        events: [
          accessEvent(who, action, kekResource(merchantId, purpose, version), merchantId, {
            details: { purpose, version },
          }),
        ],
      };
    });
  }

  /** Retires every decrypt-only version of a merchant's purpose that can be; returns those retired. */
  async retireUnreferenced(who: KeyActor, merchantId: string, purpose: KeyPurpose): Promise<number[]> {
    const rows = await this.#sql<VersionRow[]>`
      select version, state, rotated_at, compromised_at from vault.key_encryption_keys
      where merchant_id = ${merchantId} and purpose = ${purpose} and state = 'decrypt_only' order by version`;
    const retired: number[] = [];
    for (const row of rows) {
      if (await this.#whyNotRetirable(this.#sql, merchantId, purpose, row)) continue;
      await this.retire(who, merchantId, purpose, row.version);
      retired.push(row.version);
    }
    return retired;
  }

  /**
   * Declares a version compromised. If it is the active one, a new version replaces it at once. The
   * caller then moves everything under it (the rewrap or re-fingerprint job) and destroys it with
   * `retireUnreferenced`, which records `key.destroy` for a compromised version.
   */
  async compromise(
    who: KeyActor,
    merchantId: string,
    purpose: KeyPurpose,
    version: number,
  ): Promise<{ compromised: number; active: number; rotated: boolean }> {
    const [row] = await this.#sql<VersionRow[]>`
      select version, state, rotated_at, compromised_at from vault.key_encryption_keys
      where merchant_id = ${merchantId} and purpose = ${purpose} and version = ${version}`;
    if (!row || row.state === 'retired') throw new CardholdError('key_version_not_found');
    let active: number | undefined;
    if (row.state === 'active') {
      active = (await this.rotate(who, purpose, merchantId, { reason: 'compromise' })).version;
    }
    await this.#change(async (db) => {
      await db`
        update vault.key_encryption_keys set compromised_at = coalesce(compromised_at, now())
        where merchant_id = ${merchantId} and purpose = ${purpose} and version = ${version}`;
      return {
        result: undefined,
        events: [
          accessEvent(who, 'key.compromise', kekResource(merchantId, purpose, version), merchantId, {
            details: { purpose, version },
          }),
        ],
      };
    });
    if (active === undefined) {
      const [current] = await this.#sql<{ version: number }[]>`
        select version from vault.key_encryption_keys
        where merchant_id = ${merchantId} and purpose = ${purpose} and state = 'active'`;
      active = current?.version ?? 0;
    }
    return { compromised: version, active, rotated: row.state === 'active' };
  }

  /** Merchants with decrypt-only versions of a purpose: the work left for the jobs and retirement. */
  async merchantsWithOldVersions(purpose: KeyPurpose, merchantId?: string): Promise<string[]> {
    const rows = await this.#sql<{ merchant_id: string }[]>`
      select distinct merchant_id from vault.key_encryption_keys
      where purpose = ${purpose} and state = 'decrypt_only'
        ${merchantId ? this.#sql`and merchant_id = ${merchantId}` : this.#sql``}
      order by merchant_id`;
    return rows.map((r) => r.merchant_id);
  }

  async #whyNotRetirable(
    db: Sql,
    merchantId: string,
    purpose: KeyPurpose,
    row: VersionRow,
  ): Promise<string | undefined> {
    if (row.state === 'active') return 'The active version encrypts new data; rotate first';
    const since = row.rotated_at ? (Date.now() - row.rotated_at.getTime()) / 1000 : 0;
    const wait = this.#graceSeconds + (purpose === 'cvv' ? CVV_TTL_HARD_CAP_SECONDS : 0);
    if (since < wait) return `The version was rotated less than ${wait} seconds ago`;
    const references = await this.references(merchantId, purpose, row.version, db);
    if (references > 0) return `${references} records are still under this version; run the rewrap job`;
    return undefined;
  }

  /** New versions of the audit hash key and checkpoint-signing key: new records and checkpoints use them. */
  async #rotateAudit(who: KeyActor): Promise<RotatedKey> {
    const environment = this.#provider.environment;
    return this.#change(async (db) => {
      // Two rotations at once would race for the same version numbers; the loser waits here.
      await db`select pg_advisory_xact_lock(hashtext('cardhold.audit-key-rotation'))`;
      const [hash] = await db<
        { v: number }[]
      >`select coalesce(max(version), 0)::int as v from audit.hash_keys`;
      const [signing] = await db<
        { v: number }[]
      >`select coalesce(max(version), 0)::int as v from audit.signing_keys`;
      const hashVersion = (hash?.v ?? 0) + 1;
      const signingVersion = (signing?.v ?? 0) + 1;
      const hashWrapped = await this.#wrap(randomBytes(32), hashContext(hashVersion, environment));
      const pair = generateKeyPairSync('ed25519');
      const wrappedPrivate = await this.#wrap(
        pair.privateKey.export({ format: 'der', type: 'pkcs8' }),
        signingContext(signingVersion, environment),
      );
      await db`
        insert into audit.hash_keys (version, wrapped_key, provider, environment, master_version)
        values (${hashVersion}, ${hashWrapped}, ${this.#provider.name}, ${environment}, ${this.#provider.versionOf(hashWrapped)})`;
      await db`
        insert into audit.signing_keys (version, public_key, wrapped_private_key, provider, environment, master_version)
        values (${signingVersion}, ${pair.publicKey.export({ format: 'der', type: 'spki' })}, ${wrappedPrivate},
          ${this.#provider.name}, ${environment}, ${this.#provider.versionOf(wrappedPrivate)})`;
      return {
        result: {
          merchant_id: null,
          purpose: 'audit',
          version: signingVersion,
          previous: signingVersion - 1 || null,
        },
        events: [
          accessEvent(who, 'key.rotate', { type: 'audit_key', id: `hash/v${hashVersion}` }, null, {
            details: { purpose: 'audit_hash', version: hashVersion },
          }),
          accessEvent(who, 'key.rotate', { type: 'audit_key', id: `signing/v${signingVersion}` }, null, {
            details: { purpose: 'audit_signing', version: signingVersion },
          }),
        ],
      };
    });
  }

  /** Runs a change and its audit records in one transaction; drops this process's cached keys after. */
  async #change<T>(work: (db: Sql) => Promise<{ result: T; events: AuditEvent[] }>): Promise<T> {
    const result = await this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const done = await work(db);
        if (done.events.length > 0) await audit.insert(db, done.events);
        return done.result;
      }),
    );
    this.#keys?.forget();
    return result as T;
  }

  /** Wraps fresh material with the provider and zeroes it. */
  async #wrap(material: Buffer, context: string): Promise<Buffer> {
    try {
      return await this.#provider.wrap(material, context);
    } catch (cause) {
      throw new CardholdError('key_provider_unavailable', { cause });
    } finally {
      material.fill(0);
    }
  }
}

export function kekResource(merchantId: string, purpose: KeyPurpose, version: number) {
  return { type: 'key_encryption_key', id: `${merchantId}/${purpose}/v${version}` };
}
