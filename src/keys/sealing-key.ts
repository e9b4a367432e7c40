import type { KeyObject } from 'node:crypto';
import type { Sql } from 'postgres';
import { CardholdError } from '../shared/errors.ts';
import { open, seal } from './aes-gcm.ts';
import type { KeyProvider } from './key-provider.ts';
import { openSystemKey } from './system-key.ts';

export interface SealingKeySpec {
  /** Where the key is kept, wrapped by the key provider. */
  table: 'identity.operator_totp_keys' | 'webhooks.secret_keys';
  /** For error messages: `operator TOTP key`. */
  name: string;
  /** Names the key in the provider's wrapping context: `cardhold/<purpose>-key/v1|version|environment`. */
  purpose: string;
}

/** The context a sealing key is wrapped under (also used by the master rewrap job). */
export const sealingKeyContext = (purpose: string, version: number, environment: string) =>
  `cardhold/${purpose}-key/v1|${version}|${environment}`;

/**
 * A deployment-wide AES-256 key that encrypts small shared secrets at rest (operators' TOTP secrets,
 * webhook signing secrets), which cannot be hashed because cardhold must use them. Stored only wrapped by
 * the key provider, created on first use (`created` tells the caller to record it). Each ciphertext's AAD
 * binds it to its row (`binding`) and this key's version.
 */
export class SealingKey {
  readonly version: number;
  readonly #key: KeyObject;
  readonly #spec: SealingKeySpec;

  private constructor(version: number, key: KeyObject, spec: SealingKeySpec) {
    this.version = version;
    this.#key = key;
    this.#spec = spec;
  }

  static async open(
    sql: Sql,
    provider: KeyProvider,
    spec: SealingKeySpec,
  ): Promise<{ key: SealingKey; created: boolean }> {
    const { key, version, created } = await openSystemKey({
      sql,
      provider,
      table: spec.table,
      context: (v, environment) => sealingKeyContext(spec.purpose, v, environment),
      name: spec.name,
    });
    return { key: new SealingKey(version, key, spec), created };
  }

  seal(secret: Buffer, binding: string): Buffer {
    return seal(this.#key, secret, this.#aad(binding));
  }

  /** The secret, or an integrity error if the ciphertext was moved to another row or changed. */
  open(sealed: Buffer, version: number, binding: string): Buffer {
    if (version !== this.version) {
      throw new CardholdError('key_provider_unavailable', { detail: `Unknown ${this.#spec.name} version` });
    }
    return open(this.#key, sealed, this.#aad(binding));
  }

  #aad(binding: string): Buffer {
    return Buffer.from(`cardhold/${this.#spec.purpose}/v1|${this.version}|${binding}`);
  }
}
