import { createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import type { Sql } from 'postgres';
import { CardholdError } from '../shared/errors.ts';
import type { KeyProvider } from './key-provider.ts';

/**
 * A deployment-wide 256-bit secret key (the audit hash key, the operator TOTP key, the webhook secret key) kept in its own table
 * `(version, wrapped_key, provider, environment)`, wrapped by the key provider. Created on first use;
 * concurrent first users race on the primary key and all use the winner's. `created` tells the caller
 * to record the creation.
 */
export async function openSystemKey(options: {
  sql: Sql;
  provider: KeyProvider;
  /** `schema.table` */
  table: 'audit.hash_keys' | 'identity.operator_totp_keys' | 'webhooks.secret_keys';
  context: (version: number, environment: string) => string;
  name: string;
}): Promise<{ key: KeyObject; version: number; created: boolean }> {
  const { sql, provider, table, context, name } = options;
  const load = () => sql<{ version: number; wrapped_key: Buffer; environment: string }[]>`
    select version, wrapped_key, environment from ${sql(table)} order by version desc limit 1`;
  let rows = await load();
  let created = false;
  if (rows.length === 0) {
    const material = randomBytes(32);
    try {
      const wrapped = await viaProvider(() => provider.wrap(material, context(1, provider.environment)));
      const inserted = await sql`
        insert into ${sql(table)} (version, wrapped_key, provider, environment, master_version)
        values (1, ${wrapped}, ${provider.name}, ${provider.environment}, ${provider.versionOf(wrapped)})
        on conflict do nothing returning version`;
      created = inserted.length > 0;
    } finally {
      material.fill(0);
    }
    rows = await load();
  }
  const row = rows[0];
  if (!row) throw new CardholdError('key_provider_unavailable', { detail: `No ${name}` });
  if (row.environment !== provider.environment) {
    throw new CardholdError('key_environment_mismatch', {
      detail: `The ${name} belongs to another key environment`,
    });
  }
  const material = await viaProvider(() =>
    provider.unwrap(row.wrapped_key, context(row.version, row.environment)),
  );
  try {
    return { key: createSecretKey(material), version: row.version, created };
  } finally {
    material.fill(0);
  }
}

async function viaProvider<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    throw new CardholdError('key_provider_unavailable', { cause });
  }
}
