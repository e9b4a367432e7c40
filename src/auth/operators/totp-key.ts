import type { Sql } from 'postgres';
import type { KeyProvider } from '../../keys/key-provider.ts';
import { SealingKey } from '../../keys/sealing-key.ts';

/**
 * The AES-256 key that encrypts operators' TOTP secrets at rest (a TOTP secret is a shared secret, so
 * it cannot be hashed like a password). Stored only wrapped by the key provider
 * (identity.operator_totp_keys); created on first use, like the audit hash key.
 */
export type TotpKey = SealingKey;

export const TotpKey = {
  /** Opens the newest key, creating it on a fresh database (`created` tells the caller to record it). */
  open: (sql: Sql, provider: KeyProvider): Promise<{ key: TotpKey; created: boolean }> =>
    SealingKey.open(sql, provider, {
      table: 'identity.operator_totp_keys',
      name: 'operator TOTP key',
      purpose: 'operator-totp',
    }),
};
