import { randomBytes } from 'node:crypto';
import type { Sql } from './database.ts';
import type { Credentials } from './database-target.ts';

export type DatabaseRole = 'vault' | 'api';

const groupRole: Record<DatabaseRole, string> = {
  vault: 'cardhold_vault_runtime',
  api: 'cardhold_api_runtime',
};

/**
 * Development convenience: creates (or re-keys) one login per role, member of that role's group, with a
 * fresh random password that lives only in this process. Production supplies its own per-role URLs.
 */
export async function ensureRuntimeLogin(
  admin: Sql,
  prefix: string,
  role: DatabaseRole,
): Promise<Credentials> {
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(prefix)) throw new Error('invalid login prefix');
  const user = `${prefix}_${role}`;
  // base64url has no quote characters, so the literal below cannot be broken out of.
  const password = randomBytes(24).toString('base64url');
  await admin.unsafe(`
    DO $$ BEGIN
      CREATE ROLE ${user} LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END $$`);
  await admin.unsafe(
    `ALTER ROLE ${user} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '${password}'`,
  );
  await admin.unsafe(`GRANT ${groupRole[role]} TO ${user}`);
  return { user, password };
}
