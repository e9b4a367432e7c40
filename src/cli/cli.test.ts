import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import postgres from 'postgres';

const run = promisify(execFile);
const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/cardhold.js');

async function cardhold(args: string[], env: Record<string, string>) {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('CARDHOLD_') && v !== undefined) clean[k] = v;
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], {
      env: { ...clean, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('a bad setting stops start-up with status 2, naming the variable and not the value', async () => {
  const r = await cardhold(['start'], { CARDHOLD_VAULT_PORT: 'eighty443' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /configuration error: CARDHOLD_VAULT_PORT: must be a whole number/);
  assert.ok(!r.stderr.includes('eighty443'));
});

test('production mode refuses the development key provider', async () => {
  const r = await cardhold(['vault'], { CARDHOLD_MODE: 'production' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /CARDHOLD_KEY_PROVIDER: .*development-only/);
});

test('cardhold config shows whether secrets are set, never their values', async () => {
  const r = await cardhold(['config'], {
    CARDHOLD_DATABASE_URL: 'postgres://admin:Sup3rSecretPw@db:5432/cardhold',
    CARDHOLD_ADMIN_TOKEN: 'adm_do-not-print-me',
  });
  assert.equal(r.code, 0);
  const shown = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(shown['CARDHOLD_DATABASE_URL'], '(set)');
  assert.equal(shown['CARDHOLD_ADMIN_TOKEN'], '(set)');
  assert.equal(shown['CARDHOLD_REDIS_URL'], null);
  assert.ok(!r.stdout.includes('Sup3rSecretPw') && !r.stdout.includes('do-not-print-me'));
});

test('cardhold migrate applies the migrations once and is then a no-op', {
  skip: !process.env['CARDHOLD_TEST_POSTGRES_URL'] && 'needs the external PostgreSQL',
}, async () => {
  const base = process.env['CARDHOLD_TEST_POSTGRES_URL'] as string;
  const name = `cardhold_migrate_${randomBytes(4).toString('hex')}`;
  const root = postgres(base, { max: 1, onnotice: () => {} });
  await root.unsafe(`create database ${name}`);
  try {
    const url = new URL(base);
    url.pathname = `/${name}`;
    const first = await cardhold(['migrate'], { CARDHOLD_DATABASE_URL: url.toString() });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied 001_foundation/);
    const second = await cardhold(['migrate'], { CARDHOLD_DATABASE_URL: url.toString() });
    assert.match(second.stdout, /nothing to apply/);
    const db = postgres(url.toString(), { max: 1, onnotice: () => {} });
    const grants = await db<{ privilege_type: string }[]>`
      select privilege_type from information_schema.role_table_grants
      where grantee = 'cardhold_vault_runtime' and table_schema = 'vault' and table_name = 'tokens' order by 1`;
    assert.deepEqual(
      grants.map((g) => g.privilege_type),
      ['DELETE', 'INSERT', 'SELECT'],
      'the vault role cannot UPDATE tokens',
    );
    const apiOnVault = await db`
      select 1 from information_schema.role_table_grants where grantee = 'cardhold_api_runtime' and table_schema = 'vault'`;
    assert.equal(apiOnVault.length, 0, 'the api role has no access to the vault schema');
    await db.end();
  } finally {
    await root.unsafe(`drop database if exists ${name} with (force)`);
    await root.end();
  }
});
