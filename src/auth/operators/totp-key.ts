import { createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import type { Sql } from 'postgres';
import { open, seal } from '../../keys/aes-gcm.ts';
import type { KeyProvider } from '../../keys/key-provider.ts';
import { openSystemKey } from '../../keys/system-key.ts';
import { CardholdError } from '../../shared/errors.ts';

const context = (version: number, environment: string) =>
  `cardhold/operator-totp-key/v1|${version}|${environment}`;

/**
 * The AES-256 key that encrypts operators' TOTP secrets at rest (a TOTP secret is a shared secret, so
 * it cannot be hashed like a password). Stored only wrapped by the key provider
 * (identity.operator_totp_keys); created on first use, like the audit hash key.
 */
export class TotpKey {
  readonly version: number;
  readonly #key: KeyObject;

  private constructor(version: number, key: KeyObject) {
    this.version = version;
    this.#key = key;
  }

  /** Opens the newest key, creating it on a fresh database (`created` tells the caller to record it). */
  static async open(sql: Sql, provider: KeyProvider): Promise<{ key: TotpKey; created: boolean }> {
    const { key, version, created } = await openSystemKey({
      sql,
      provider,
      table: 'identity.operator_totp_keys',
      context,
      name: 'operator TOTP key',
    });
    return { key: new TotpKey(version, key), created };
  }

  /** AES-256-GCM with an AAD that binds the secret to its row (`binding`) and this key's version. */
  seal(secret: Buffer, binding: string): Buffer {
    return seal(this.#key, secret, this.#aad(binding));
  }

  /** The secret, or an integrity error if the ciphertext was moved to another row or changed. */
  open(sealed: Buffer, version: number, binding: string): Buffer {
    if (version !== this.version) {
      throw new CardholdError('key_provider_unavailable', { detail: 'Unknown operator TOTP key version' });
    }
    return open(this.#key, sealed, this.#aad(binding));
  }

  #aad(binding: string): Buffer {
    return Buffer.from(`cardhold/operator-totp/v1|${this.version}|${binding}`);
  }
}
