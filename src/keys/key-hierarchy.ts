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
}

/**
 * The middle layer of the hierarchy: one versioned key-encrypting key per merchant and purpose, stored
 * wrapped by the key provider. Unwrapped keys are cached as KeyObjects so the provider (an HSM later) is
 * asked once per key, never per card.
 */
export class KeyHierarchy {
  readonly #sql: Sql;
  readonly #provider: KeyProvider;
  readonly #keys = new Map<string, Promise<KeyObject>>();
  readonly #active = new Map<string, Promise<VersionedKey>>();
  readonly #onProviderFailure: ((error: unknown) => void) | undefined;
  readonly #onKeyCreated: KeyCreatedHook | undefined;

  /**
   * `onProviderFailure` hears every failed wrap or unwrap (a critical control failure, PCI DSS 10.7.2);
   * `onKeyCreated` records a new key (PCI DSS 10.2.1.7) in the transaction that creates it.
   */
  constructor(
    sql: Sql,
    provider: KeyProvider,
    options: { onProviderFailure?: (error: unknown) => void; onKeyCreated?: KeyCreatedHook } = {},
  ) {
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
    const id = `${merchantId}|${purpose}`;
    let pending = this.#active.get(id);
    if (!pending) {
      pending = this.#loadActive(merchantId, purpose);
      this.#active.set(id, pending);
      pending.catch(() => this.#active.delete(id));
    }
    return pending;
  }

  /** A specific version, for reading records written under it. */
  version(merchantId: string, purpose: KeyPurpose, version: number): Promise<KeyObject> {
    const id = `${merchantId}|${purpose}|${version}`;
    let pending = this.#keys.get(id);
    if (!pending) {
      pending = this.#loadVersion(merchantId, purpose, version);
      this.#keys.set(id, pending);
      pending.catch(() => this.#keys.delete(id));
    }
    return pending;
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
  }

  async #loadActive(merchantId: string, purpose: KeyPurpose): Promise<VersionedKey> {
    let rows = await this.#sql<KekRow[]>`
      select version, wrapped_key, environment from vault.key_encryption_keys
      where merchant_id = ${merchantId} and purpose = ${purpose} and state = 'active'
      order by version desc limit 1`;
    if (rows.length === 0) {
      await this.#create(merchantId, purpose, 1);
      rows = await this.#sql<KekRow[]>`
        select version, wrapped_key, environment from vault.key_encryption_keys
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
        context(merchantId, purpose, version, this.#provider.environment),
      );
      // Concurrent first writers race here; the loser's key is discarded and both use the winner's.
      const insert = (db: Sql) => db`
        insert into vault.key_encryption_keys (merchant_id, purpose, version, wrapped_key, provider, environment)
        values (${merchantId}, ${purpose}, ${version}, ${wrapped}, ${this.#provider.name}, ${this.#provider.environment})
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
      select version, wrapped_key, environment from vault.key_encryption_keys
      where merchant_id = ${merchantId} and purpose = ${purpose} and version = ${version}`;
    const row = rows[0];
    if (!row)
      throw new CardholdError('token_integrity_failed', {
        detail: 'The record names an unknown key version',
      });
    if (row.environment !== this.#provider.environment) {
      throw new CardholdError('key_environment_mismatch', {
        detail: 'Key environment does not match the key provider',
      });
    }
    const material = await this.#unwrap(
      row.wrapped_key,
      context(merchantId, purpose, version, row.environment),
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
      this.#onProviderFailure?.(cause);
      throw new CardholdError('key_provider_unavailable', { cause });
    }
  }

  async #unwrap(wrapped: Buffer, ctx: string): Promise<Buffer> {
    try {
      return await this.#provider.unwrap(wrapped, ctx);
    } catch (cause) {
      if (isCardholdError(cause) && cause.code === 'token_integrity_failed') throw cause;
      this.#onProviderFailure?.(cause);
      throw new CardholdError('key_provider_unavailable', { cause });
    }
  }
}

function context(merchantId: string, purpose: KeyPurpose, version: number, environment: string): string {
  return `cardhold/kek/v1|${environment}|${merchantId}|${purpose}|${version}`;
}
