import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from 'postgres';

const migrationsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function loadMigrations(dir = migrationsDir): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => {
      const sql = await readFile(path.join(dir, file), 'utf8');
      return {
        version: Number(file.slice(0, 3)),
        name: file.slice(4, -4),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    }),
  );
}

export interface MigrationResult {
  applied: Migration[];
  current: number;
}

/**
 * Applies pending migrations in order, each in its own transaction, under an advisory lock so that
 * several replicas starting at once do not race. An applied migration whose file has changed stops
 * everything: history is never rewritten silently.
 */
export async function migrate(admin: Sql, migrations?: Migration[]): Promise<MigrationResult> {
  const all = migrations ?? (await loadMigrations());
  return admin.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('cardhold.migrate'))`;
    await tx`create schema if not exists cardhold_meta`;
    await tx`create table if not exists cardhold_meta.migrations (
      version integer primary key, name text not null, checksum text not null,
      applied_at timestamptz not null default now())`;
    const done = await tx<
      { version: number; checksum: string }[]
    >`select version, checksum from cardhold_meta.migrations`;
    const byVersion = new Map(done.map((r) => [r.version, r.checksum]));
    const applied: Migration[] = [];
    for (const m of all) {
      const seen = byVersion.get(m.version);
      if (seen !== undefined) {
        if (seen !== m.checksum)
          throw new Error(`migration ${m.version}_${m.name} was changed after it was applied`);
        continue;
      }
      await tx.unsafe(m.sql);
      await tx`insert into cardhold_meta.migrations (version, name, checksum) values (${m.version}, ${m.name}, ${m.checksum})`;
      applied.push(m);
    }
    return { applied, current: all.at(-1)?.version ?? 0 };
  });
}
