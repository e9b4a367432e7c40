import { createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import type { Sql } from 'postgres';
import { CardholdError, isCardholdError } from '../shared/errors.ts';
import type { KeyProvider, KeyPurpose } from './key-provider.ts';

/**
 * Wraps a key's creation: runs `create` on a transaction of its choosing (true when this writer's key
 * won) and commits what it records with it.
 */
export type KeyCreatedHook = (
  key: { merchantId: string; purpose: KeyPurpose; version: number },
  create: (db: Sql) => Promise<boolean>,
) => Promise<void>;

export interface VersionedKey {
  version: number;
  key: KeyObject;
}

interface KekRow {
  version: number;
  wrapped_key: Buffer;
  environment: string;
  state: string;
}

/**
 * How long a process trusts what it learned about key versions (which one is active, which still
 * decrypt). A rotation or retirement made elsewhere (the CLI, another replica) reaches every process
 * within this time; retirement waits at least twice as long after a rotation (see key-lifecycle.ts).
 */
export const KEY_CACHE_SECONDS = 30;

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

/**
 * The middle layer of the hierarchy: one versioned key-encrypting key per merchant and purpose, stored
 * wrapped by the key provider. Unwrapped keys are cached as KeyObjects so the provider (an HSM later) is
 * asked once per key, never per card.
 */
export class KeyHierarchy {
  readonly #sql: Sql;
  readonly #provider: KeyProvider;
  readonly #keys = new Map<string, Cached<KeyObject>>();
  readonly #active = new Map<string, Cached<VersionedKey>>();
  readonly #readable = new Map<string, Cached<VersionedKey[]>>();
  readonly #cacheMs: number;
  readonly #onProviderFailure: ((error: unknown) => void) | undefined;
  readonly #onKeyCreated: KeyCreatedHook | undefined;

  /**
   * `onProviderFailure` hears every failed wrap or unwrap (a critical control failure, PCI DSS 10.7.2);
   * `onKeyCreated` records a new key (PCI DSS 10.2.1.7) in the transaction that creates it.
   */
  constructor(
    sql: Sql,
    provider: KeyProvider,
    options: {
      onProviderFailure?: (error: unknown) => void;
      onKeyCreated?: KeyCreatedHook;
      cacheSeconds?: number;
    } = {},
  ) {
    this.#cacheMs = (options.cacheSeconds ?? KEY_CACHE_SECONDS) * 1000;
    this.#sql = sql;
    this.#provider = provider;
    this.#onProviderFailure = options.onProviderFailure;
    this.#onKeyCreated = options.onKeyCreated;
  }

  get provider(): KeyProvider {
    return this.#provider;
  }

  /** The key new writes use, created (version 1) on a merchant's first use of the purpose. */
  active(merchantId: string, purpose: KeyPurpose): Promise<VersionedKey> {
    return this.#cached(this.#active, `${merchantId}|${purpose}`, () =>
      this.#loadActive(merchantId, purpose),
    );
  }

  /** A specific version, for reading records written under it; a retired version opens nothing. */
  version(merchantId: string, purpose: KeyPurpose, version: number): Promise<KeyObject> {
    return this.#cached(this.#keys, `${merchantId}|${purpose}|${version}`, () =>
      this.#loadVersion(merchantId, purpose, version),
    );
  }

  /**
   * Every version that still decrypts, newest (the active one) first: during a re-fingerprint both the
   * new and the old fingerprint keys find a card.
   */
  readable(merchantId: string, purpose: KeyPurpose): Promise<VersionedKey[]> {
    return this.#cached(this.#readable, `${merchantId}|${purpose}`, async () => {
      const active = await this.active(merchantId, purpose);
      const rows = await this.#sql<{ version: number }[]>`
        select version from vault.key_encryption_keys
        where merchant_id = ${merchantId} and purpose = ${purpose} and state = 'decrypt_only'
        order by version desc`;
      const older = await Promise.all(
        rows.map(async (r) => ({
          version: r.version,
          key: await this.version(merchantId, purpose, r.version),
        })),
      );
      return [active, ...older.filter((k) => k.version !== active.version)];
    });
  }

  #cached<T>(map: Map<string, Cached<T>>, id: string, load: () => Promise<T>): Promise<T> {
    const hit = map.get(id);
    if (hit && Date.now() - hit.at < this.#cacheMs) return hit.value;
    const value = load();
    const entry = { at: Date.now(), value };
    map.set(id, entry);
    value.catch(() => {
      if (map.get(id) === entry) map.delete(id);
    });
    return value;
  }

  /** Age in seconds of the oldest active key-encrypting key, per purpose that has one (for metrics). */
  async activeKeyAges(): Promise<Array<{ purpose: string; ageSeconds: number }>> {
    const rows = await this.#sql<{ purpose: string; age_seconds: number }[]>`
      select purpose, extract(epoch from now() - min(created_at))::float8 as age_seconds
      from vault.key_encryption_keys where state = 'active' group by purpose`;
    return rows.map((r) => ({ purpose: r.purpose, ageSeconds: r.age_seconds }));
  }

  /** Drops cached key material, e.g. on shutdown. */
  forget(): void {
    this.#keys.clear();
    this.#active.clear();
    this.#readable.clear();
  }

  async #loadActive(merchantId: string, purpose: KeyPurpose): Promise<VersionedKey> {
    let rows = await this.#sql<KekRow[]>`
      select version, wrapped_key, environment, state from vault.key_encryption_keys
      where merchant_id = ${merchantId} and purpose = ${purpose} and state = 'active'
      order by version desc limit 1`;
    if (rows.length === 0) {
      await this.#create(merchantId, purpose, 1);
      rows = await this.#sql<KekRow[]>`
        select version, wrapped_key, environment, state from vault.key_encryption_keys
        where merchant_id = ${merchantId} and purpose = ${purpose} and state = 'active'
        order by version desc limit 1`;
    }
    const row = rows[0];
    if (!row) throw new CardholdError('key_provider_unavailable', { detail: 'No active key-encrypting key' });
    const key = await this.version(merchantId, purpose, row.version);
    return { version: row.version, key };
  }

  async #create(merchantId: string, purpose: KeyPurpose, version: number): Promise<void> {
    const material = randomBytes(32);
    try {
      const wrapped = await this.#wrap(
        material,
        kekContext(merchantId, purpose, version, this.#provider.environment),
      );
      // Concurrent first writers race here; the loser's key is discarded and both use the winner's.
      const insert = (db: Sql) => db`
        insert into vault.key_encryption_keys (merchant_id, purpose, version, wrapped_key, provider, environment, master_version)
        values (${merchantId}, ${purpose}, ${version}, ${wrapped}, ${this.#provider.name}, ${this.#provider.environment},
          ${this.#provider.versionOf(wrapped)})
        on conflict do nothing returning version`;
      const hook = this.#onKeyCreated;
      if (hook) {
        await hook({ merchantId, purpose, version }, async (db) => (await insert(db)).length > 0);
      } else {
        await insert(this.#sql);
      }
    } finally {
      material.fill(0);
    }
  }

  async #loadVersion(merchantId: string, purpose: KeyPurpose, version: number): Promise<KeyObject> {
    const rows = await this.#sql<KekRow[]>`
      select version, wrapped_key, environment, state from vault.key_encryption_keys
      where merchant_id = ${merchantId} and purpose = ${purpose} and version = ${version}`;
    const row = rows[0];
    if (!row)
      throw new CardholdError('token_integrity_failed', {
        detail: 'The record names an unknown key version',
      });
    if (row.state === 'retired')
      throw new CardholdError('token_integrity_failed', {
        detail: 'The record names a retired (destroyed) key version',
      });
    if (row.environment !== this.#provider.environment) {
      throw new CardholdError('key_environment_mismatch', {
        detail: 'Key environment does not match the key provider',
      });
    }
    const material = await this.#unwrap(
      row.wrapped_key,
      kekContext(merchantId, purpose, version, row.environment),
    );
    try {
      return createSecretKey(material);
    } finally {
      material.fill(0);
    }
  }

  async #wrap(material: Buffer, ctx: string): Promise<Buffer> {
    try {
      return await this.#provider.wrap(material, ctx);
    } catch (cause) {
      this.#providerFailed(cause);
      throw new CardholdError('key_provider_unavailable', { cause });
    }
  }

  /**
   * The provider failed: every cached key goes too, so that no card is opened with a key the provider
   * could not give now (fail closed). The next use asks the provider again, and works once it is back.
   */
  #providerFailed(cause: unknown): void {
    this.forget();
    this.#onProviderFailure?.(cause);
  }

  /** The provider's own health check, run periodically by the vault; a failure drops the cache. */
  async checkProvider(): Promise<void> {
    try {
      await this.#provider.check();
    } catch (cause) {
      this.#providerFailed(cause);
      throw cause;
    }
  }

  async #unwrap(wrapped: Buffer, ctx: string): Promise<Buffer> {
    try {
      return await this.#provider.unwrap(wrapped, ctx);
    } catch (cause) {
      if (isCardholdError(cause) && cause.code === 'token_integrity_failed') throw cause;
      this.#providerFailed(cause);
      throw new CardholdError('key_provider_unavailable', { cause });
    }
  }
}

/** The context a key-encrypting key is wrapped under by the key provider. */
export function kekContext(
  merchantId: string,
  purpose: KeyPurpose,
  version: number,
  environment: string,
): string {
  return `cardhold/kek/v1|${environment}|${merchantId}|${purpose}|${version}`;
}
