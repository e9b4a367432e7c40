import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { testCards } from '../../test/fixtures/cards.ts';
import { futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { runCli } from '../../test/run-cli.ts';
import type { InventoryItem } from '../keys/key-inventory.ts';
import type { KeyStatus } from '../keys/key-status.ts';

function cli(t: TestPlatform, args: string[], env: Record<string, string> = {}) {
  return runCli(t.dataDir, args, { env });
}

describe('`cardhold keys` lifecycle commands and `merchants freeze` (embedded)', () => {
  let t: TestPlatform;
  let tokenId: string;
  before(async () => {
    t = await startTestPlatform('embedded', 'keys-cli', { env: { CARDHOLD_API_KEY_CACHE_SECONDS: '0' } });
    const made = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
      body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
    });
    assert.equal(made.status, 201);
    tokenId = made.json.token.id;
  });
  after(async () => t?.close());

  test('rotate, then the inventory lists exactly the keys and certificates that exist', async () => {
    const rotated = await cli(t, ['keys', 'rotate', '--purpose', 'pan', '--merchant', t.merchantId]);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.deepEqual(JSON.parse(rotated.stdout), {
      merchant_id: t.merchantId,
      purpose: 'pan',
      version: 2,
      previous: 1,
    });

    const listed = await cli(t, ['keys', 'inventory', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const items = JSON.parse(listed.stdout) as InventoryItem[];
    const ids = items.map((i) => i.id).sort();
    assert.equal(new Set(ids).size, ids.length, 'each item once');

    const mine = items.filter((i) => i.merchant_id === t.merchantId).map((i) => `${i.id} ${i.state}`);
    assert.deepEqual(mine.sort(), [
      `kek:${t.merchantId}/fingerprint/v1 active`,
      `kek:${t.merchantId}/pan/v1 decrypt_only`,
      `kek:${t.merchantId}/pan/v2 active`,
    ]);

    // Independently: what the database and the certificate directory hold.
    const expected = ['master:local/1'];
    for (const r of await t.adminSql<{ id: string }[]>`
      select 'kek:' || merchant_id || '/' || purpose || '/v' || version as id from vault.key_encryption_keys
      union all select 'audit_hash:v' || version from audit.hash_keys
      union all select 'audit_signing:v' || version from audit.signing_keys
      union all select 'session:' || kid from identity.session_keys
      union all select 'totp:v' || version from identity.operator_totp_keys`)
      expected.push(r.id);
    for (const file of await readdir(path.join(t.dataDir, 'tls')))
      if (file.endsWith('.crt')) expected.push(`certificate:${file}`);
    assert.deepEqual(ids, expected.sort());

    const ca = items.find((i) => i.id === 'certificate:ca.crt');
    assert.equal(ca?.purpose, 'TLS certificate authority');
    assert.equal(ca?.strength_bits, 256);
    assert.match(ca?.algorithm ?? '', /^EC /);
    const vaultCert = items.find((i) => i.id === 'certificate:vault.crt');
    assert.match(vaultCert?.san ?? '', /spiffe:\/\/cardhold\/vault/);
    assert.ok(vaultCert?.expires_at && new Date(vaultCert.expires_at) > new Date());
    const pan = items.find((i) => i.id === `kek:${t.merchantId}/pan/v2`);
    assert.equal(pan?.algorithm, 'AES-256-GCM (key wrap)');
    assert.equal(pan?.provider, 'local');
    assert.equal(pan?.environment, 'development');

    const table = await cli(t, ['keys', 'inventory']);
    assert.equal(table.code, 0);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^id\s+purpose\s+algorithm\s+strength_bits/);
    assert.equal(lines.length, items.length + 1, 'one row per key or certificate');
  });

  test('status warns inside the warning window and fails once a cryptoperiod has ended', async () => {
    const ok = await cli(t, ['keys', 'status', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const rows = JSON.parse(ok.stdout) as KeyStatus[];
    assert.ok(rows.every((r) => r.status === 'ok'));
    assert.ok(rows.some((r) => r.key === 'audit_signing'));

    const setAge = (days: number) =>
      t.adminSql`
        update vault.key_encryption_keys set created_at = now() - make_interval(hours => ${days} * 24)
        where merchant_id = ${t.merchantId} and purpose = 'pan' and state = 'active'`;
    await setAge(80);
    const warn = await cli(t, ['keys', 'status'], {
      CARDHOLD_CRYPTOPERIOD_PAN_DAYS: '90',
      CARDHOLD_CRYPTOPERIOD_WARN_DAYS: '30',
    });
    assert.equal(warn.code, 0, warn.stderr);
    assert.match(warn.stdout, new RegExp(`^WARN ${t.merchantId} kek/pan v2: 80 of 90 days`, 'm'));
    await setAge(91);
    const expired = await cli(t, ['keys', 'status'], { CARDHOLD_CRYPTOPERIOD_PAN_DAYS: '90' });
    assert.equal(expired.code, 4);
    assert.match(expired.stdout, new RegExp(`^EXPIRED ${t.merchantId} kek/pan v2`, 'm'));
    await setAge(0);
  });

  test('keys compromise of the active version waits the configured grace, moves everything, destroys it', async () => {
    const [active] = await t.adminSql<{ version: number }[]>`
      select version from vault.key_encryption_keys
      where merchant_id = ${t.merchantId} and purpose = 'fingerprint' and state = 'active'`;
    const version = String(active?.version);
    const grace = { CARDHOLD_KEY_RETIRE_GRACE_SECONDS: '0' };
    const compromised = await cli(
      t,
      ['keys', 'compromise', '--purpose', 'fingerprint', '--merchant', t.merchantId, '--version', version],
      grace,
    );
    assert.equal(compromised.code, 0, compromised.stderr);
    assert.match(
      compromised.stderr,
      /waiting 0 s until every process has stopped using version/,
      compromised.stdout,
    );
    const answer = JSON.parse(compromised.stdout) as { rotated: boolean; destroyed: boolean };
    assert.deepEqual([answer.rotated, answer.destroyed], [true, true]);
    const [row] = await t.adminSql<{ state: string; compromised_at: Date | null; length: number }[]>`
      select state, compromised_at, length(wrapped_key)::int as length from vault.key_encryption_keys
      where merchant_id = ${t.merchantId} and purpose = 'fingerprint' and version = ${Number(version)}`;
    assert.equal(row?.state, 'retired');
    assert.ok(row?.compromised_at);
    assert.equal(row?.length, 0, 'its material is destroyed');
    const [moved] = await t.adminSql<{ n: number }[]>`
      select count(*)::int as n from vault.tokens
      where merchant_id = ${t.merchantId} and fingerprint_version = ${Number(version)}`;
    assert.equal(moved?.n, 0, 'every fingerprint was recomputed under the new version');
    const read = await t.request('GET', `${t.vaultUrl}/v1/tokens/${tokenId}`);
    assert.equal(read.status, 200);
    const audited = await t.adminSql<{ action: string }[]>`
      select action from audit.records where resource_id = ${`${t.merchantId}/fingerprint/v${version}`}
      order by seq`;
    assert.deepEqual(
      audited.map((a) => a.action),
      ['key.create', 'key.compromise', 'key.destroy'],
    );
    // Without the setting the wait is the production default.
    const help = await cli(t, ['config']);
    assert.match(help.stdout, /CARDHOLD_KEY_RETIRE_GRACE_SECONDS.*60/);
  });

  test('keys rotate --purpose master, then keys rewrap moves every wrapped key and destroys the old version', async () => {
    const rotated = await cli(t, ['keys', 'rotate', '--purpose', 'master']);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.deepEqual(JSON.parse(rotated.stdout), { provider: 'local', version: '2', previous: '1' });
    const rewrap = await cli(t, ['keys', 'rewrap'], { CARDHOLD_KEY_RETIRE_GRACE_SECONDS: '0' });
    assert.equal(rewrap.code, 0, rewrap.stderr);
    assert.match(rewrap.stderr, /master rewrap vault\.key_encryption_keys → local\/2: \d+\/\d+/);
    const { master } = JSON.parse(rewrap.stdout) as {
      master: { remaining: number; retired: Array<{ version: string; destroyed: boolean }> };
    };
    assert.equal(master.remaining, 0);
    assert.deepEqual(master.retired, [{ version: '1', destroyed: true }]);
    const [left] = await t.adminSql<{ n: number }[]>`
      select count(*)::int as n from vault.key_encryption_keys
      where state <> 'retired' and master_version is distinct from '2'`;
    assert.equal(left?.n, 0);
    // The running vault learns of version 2 from the key file: an old token still reads.
    const vault = t.platform.services.vault;
    assert.ok(vault);
    vault.keys.forget();
    const revealed = await vault.tokens.reveal(t.access, tokenId, 'master rotation test');
    assert.equal(revealed.pan.expose() === testCards.visa, true);
    const listed = await cli(t, ['keys', 'inventory', '--json']);
    const masters = (JSON.parse(listed.stdout) as InventoryItem[])
      .filter((i) => i.id.startsWith('master:'))
      .map((i) => `${i.id} ${i.state}`);
    assert.deepEqual(masters, ['master:local/1 retired', 'master:local/2 active']);
  });

  test('a frozen merchant gets none of its card data until it is unfrozen; both are audited', async () => {
    const frozen = await cli(t, ['merchants', 'freeze', t.merchantId]);
    assert.equal(frozen.code, 0, frozen.stderr);
    assert.ok(JSON.parse(frozen.stdout).frozen_at);
    const refused = await t.request<{ code: string }>('GET', `${t.vaultUrl}/v1/tokens/${tokenId}`);
    assert.equal(refused.status, 423);
    assert.equal(refused.json.code, 'merchant_frozen');
    const tokenize = await t.request<{ code: string }>('POST', `${t.vaultUrl}/v1/tokens`, {
      body: { pan: testCards.mastercard, exp_month: 12, exp_year: futureYear },
    });
    assert.equal(tokenize.status, 423);
    const [count] = await t.adminSql<{ n: number }[]>`
      select count(*)::int as n from vault.tokens where merchant_id = ${t.merchantId}`;
    assert.equal(count?.n, 1, 'nothing written while frozen');

    assert.equal((await cli(t, ['merchants', 'unfreeze', t.merchantId])).code, 0);
    const served = await t.request('GET', `${t.vaultUrl}/v1/tokens/${tokenId}`);
    assert.equal(served.status, 200);
    assert.equal((await cli(t, ['merchants', 'freeze', 'mer_missing'])).code, 1);

    const actions = await t.adminSql<{ action: string; outcome: string }[]>`
      select action, outcome from audit.records
      where action in ('merchant.freeze', 'merchant.unfreeze', 'token.read', 'token.create', 'key.rotate', 'key.inventory')
        and (merchant_id = ${t.merchantId} or merchant_id is null) order by seq`;
    const seen = actions.map((a) => `${a.action} ${a.outcome}`);
    for (const expected of [
      'key.rotate success',
      'key.inventory success',
      'merchant.freeze success',
      'token.read failure',
      'token.create failure',
      'merchant.unfreeze success',
    ]) {
      assert.ok(seen.includes(expected), `${expected} is recorded`);
    }
  });
});
