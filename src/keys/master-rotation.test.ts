import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { allTestPans } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { startKmsStandIn } from '../../test/kms-stand-in.ts';
import { createSoftHsmMasterKey, initSoftHsmToken, pkcs11Env, softHsmAvailable } from '../../test/softhsm.ts';
import type { VaultServices } from '../platform/platform.ts';
import { isCardholdError } from '../shared/errors.ts';
import { Secret } from '../shared/secret.ts';
import { AwsKmsClient } from './aws-kms-client.ts';
import { keyInventory } from './key-inventory.ts';
import type { KeyProvider } from './key-provider.ts';
import { KmsKeyProvider } from './kms-key-provider.ts';
import { LocalKeyProvider } from './local-key-provider.ts';
import { initSealedKey, LocalSealedKeyProvider } from './local-sealed-key-provider.ts';
import {
  type MasterDeps,
  retireOldMasterVersions,
  rotateMasterKey,
  runMasterRewrap,
  wrappedKeyTables,
} from './master-rotation.ts';

const card = (pan: string) => ({ pan: new Secret(pan), expMonth: 12, expYear: futureYear });
const periods = { pan: 365, cvv: 365, fingerprint: 365, audit: 365, warnDays: 30 };

/** Master versions recorded on every wrapped key, across all the tables, as `version: count`. */
async function recordedVersions(t: TestPlatform): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of wrappedKeyTables) {
    const rows = await t.adminSql<{ v: string | null; n: number }[]>`
      select master_version as v, count(*)::int as n from ${t.adminSql.unsafe(table.table)}
      where ${t.adminSql.unsafe(table.live)} group by 1`;
    for (const r of rows) counts[r.v ?? 'null'] = (counts[r.v ?? 'null'] ?? 0) + r.n;
  }
  return counts;
}

/**
 * Tokenizes for two merchants, rotates the master key with `provider` (the CLI's, or the vault's own),
 * kills the master rewrap after three batches, checks every token still opens, resumes, and retires the
 * old master version. Returns what was written, for reading again after a restart.
 */
async function rotateKillResume(t: TestPlatform, provider: KeyProvider) {
  const vault = t.platform.services.vault as VaultServices;
  const written = new Map<string, string>();
  for (let i = 0; i < 6; i++) {
    const pan = allTestPans[i % allTestPans.length] as string;
    const { token } = await vault.tokens.tokenize(t.access, card(pan));
    written.set(token.id, pan);
  }
  const readAll = async () => {
    vault.keys.forget(); // as after the key cache expires: key-encrypting keys are unwrapped again
    for (const [id, pan] of written) {
      const revealed = await vault.tokens.reveal(t.access, id, 'master rotation test');
      assert.equal(revealed.pan.expose() === pan, true, `token ${id} opens to its own card`);
    }
  };
  const before = await recordedVersions(t);
  const wrappedCount = Object.values(before).reduce((a, b) => a + b, 0);
  assert.deepEqual(Object.keys(before), ['1'], 'every key written since migration 009 names master v1');
  const tokensBefore = await t.adminSql<{ id: string; wrapped_dek: Buffer; ciphertext: Buffer }[]>`
    select id, wrapped_dek, ciphertext from vault.tokens order by id`;

  const deps: MasterDeps = { sql: t.adminSql, provider, trail: vault.audit.trail, who: t.access };
  const rotated = await rotateMasterKey(deps);
  assert.deepEqual(rotated, { provider: provider.name, version: '2', previous: '1' });

  const killed = new Error('killed by the test');
  await assert.rejects(
    runMasterRewrap(deps, {
      batchSize: 1,
      afterBatch: (batch) => {
        if (batch === 3) throw killed;
      },
    }),
    killed,
  );
  assert.deepEqual(await recordedVersions(t), { '1': wrappedCount - 3, '2': 3 }, 'three batches of one');
  await readAll();

  const progress: number[] = [];
  const resumed = await runMasterRewrap(deps, { batchSize: 2, onProgress: (p) => progress.push(p.done) });
  assert.deepEqual(
    { done: resumed.done, total: resumed.total, remaining: resumed.remaining },
    { done: wrappedCount - 3, total: wrappedCount - 3, remaining: 0 },
  );
  assert.ok(progress.length > 0, 'progress was reported');
  assert.deepEqual(await recordedVersions(t), { '2': wrappedCount });
  const again = await runMasterRewrap(deps);
  assert.equal(again.total, 0, 'nothing left: the job is idempotent');

  // Card data was never touched: the data keys and ciphertexts are byte for byte the same.
  const tokensAfter = await t.adminSql<{ id: string; wrapped_dek: Buffer; ciphertext: Buffer }[]>`
    select id, wrapped_dek, ciphertext from vault.tokens order by id`;
  assert.deepEqual(tokensAfter, tokensBefore);

  // Within the grace the old version is kept; after it, it is destroyed.
  const early = await retireOldMasterVersions(deps, 3600);
  assert.deepEqual(early.retired, []);
  assert.match(early.kept[0]?.reason ?? '', /rotated less than 3600 seconds ago/);
  const retired = await retireOldMasterVersions(deps, 0);
  assert.deepEqual(retired.retired, [{ version: '1', destroyed: true }]);
  assert.deepEqual(provider.masterVersions(), ['2']);
  await readAll();
  const { token } = await vault.tokens.tokenize(t.access, card(allTestPans[7] as string));
  written.set(token.id, allTestPans[7] as string);
  await readAll();

  const inventory = await keyInventory({ sql: t.adminSql, provider, periods, certificateDir: undefined });
  const masters = inventory.filter((i) => i.id.startsWith('master:')).map((i) => `${i.id} ${i.state}`);
  assert.deepEqual(masters, [`master:${provider.name}/1 retired`, `master:${provider.name}/2 active`]);

  const actions = await t.adminSql<{ action: string; resource_id: string }[]>`
    select action, resource_id from audit.records where resource_type = 'master_key' order by seq`;
  assert.deepEqual(
    actions.map((a) => `${a.action} ${a.resource_id}`),
    [
      `key.rotate ${provider.name}/2`,
      `key.rewrap_start ${provider.name}/2`, // the killed run
      `key.rewrap_start ${provider.name}/2`,
      `key.rewrap_finish ${provider.name}/2`,
      `key.retire ${provider.name}/1`,
    ],
  );
  return written;
}

for (const backend of backends()) {
  describe(`master key rotation on the local provider (${backend})`, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(backend, 'master-rotation');
    });
    after(() => t.close());

    test('a master rewrap killed halfway and resumed leaves every token readable; the old version is destroyed', async () => {
      // The CLI's provider, in its own object: the vault's provider learns of version 2 from the file.
      const cli = await LocalKeyProvider.open(t.dataDir);
      try {
        await rotateKillResume(t, cli);
        const file = JSON.parse(await readFile(cli.file, 'utf8')) as { keys: Array<{ version: number }> };
        assert.deepEqual(
          file.keys.map((k) => k.version),
          [2],
          'version 1 is gone from the key file',
        );
      } finally {
        await cli.close();
      }
      // The audit keys were re-wrapped in place; everything else about them stays append-only.
      await assert.rejects(t.adminSql`update audit.hash_keys set created_at = now()`, /append-only/);
      await assert.rejects(t.adminSql`delete from audit.signing_keys`, /append-only/);
    });

    test('two rotations at once, from two processes, give two versions and lose none', async () => {
      const vault = t.platform.services.vault as VaultServices;
      // Two CLI processes' providers on the same key file.
      const [a, b] = [await LocalKeyProvider.open(t.dataDir), await LocalKeyProvider.open(t.dataDir)];
      try {
        const deps = (provider: KeyProvider): MasterDeps => ({
          sql: t.adminSql,
          provider,
          trail: vault.audit.trail,
          who: t.access,
        });
        const rotated = await Promise.all([rotateMasterKey(deps(a)), rotateMasterKey(deps(b))]);
        const versions = rotated.map((r) => Number(r.version));
        assert.equal(new Set(versions).size, 2, `two distinct versions: ${versions.join(', ')}`);
        // What each wrapped under its new version opens in a third process that reads the file afresh.
        const sealed = [
          await a.wrap(Buffer.alloc(32, 1), 'ctx-a'),
          await b.wrap(Buffer.alloc(32, 2), 'ctx-b'),
        ];
        const fresh = await LocalKeyProvider.open(t.dataDir);
        try {
          assert.deepEqual(await fresh.unwrap(sealed[0] as Buffer, 'ctx-a'), Buffer.alloc(32, 1));
          assert.deepEqual(await fresh.unwrap(sealed[1] as Buffer, 'ctx-b'), Buffer.alloc(32, 2));
        } finally {
          await fresh.close();
        }
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}

describe('master key rotation on a pkcs11 provider (SoftHSM2)', {
  skip: softHsmAvailable() ? false : 'SoftHSM2 is not installed (apt-get install softhsm2; .ci/run does)',
}, () => {
  test('rotate, kill the rewrap halfway, resume, destroy version 1 in the token, restart and read old tokens', async () => {
    const token = await initSoftHsmToken('cardhold-master-rotation');
    await createSoftHsmMasterKey(token, 'development');
    const env = pkcs11Env(token);
    const first = await startTestPlatform('embedded', 'master-rotation-pkcs11', { env });
    let written: Map<string, string>;
    try {
      const vault = first.platform.services.vault as VaultServices;
      written = await rotateKillResume(first, vault.keys.provider);
    } finally {
      await first.close({ keepDataDir: true });
    }
    const second = await startTestPlatform('embedded', 'master-rotation-pkcs11-restart', {
      env,
      dataDir: first.dataDir,
    });
    try {
      const vault = second.platform.services.vault as VaultServices;
      assert.deepEqual(
        vault.keys.provider.masterVersions(),
        ['2'],
        'version 1 no longer exists in the token',
      );
      for (const [id, pan] of written) {
        const revealed = await vault.tokens.reveal(second.access, id, 'pkcs11 restart test');
        assert.equal(revealed.pan.expose() === pan, true, `token ${id} opens after the restart`);
      }
    } finally {
      await second.close();
      await token.remove();
    }
  });
});

describe('master key rotation of the local-sealed provider', () => {
  test('a new version sealed under the same shares; other processes pick it up; version 1 can be destroyed', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-sealed-rotation-'));
    const file = path.join(dir, 'master.sealed.json');
    const { shares } = await initSealedKey({ file, shares: 3, threshold: 2, environment: 'production' });
    const unsealed = async () => {
      const provider = await LocalSealedKeyProvider.open(file, 'production');
      for (const share of shares.slice(1)) await provider.submitShare(share);
      return provider;
    };
    const running = await unsealed(); // a vault, unsealed before the rotation
    const old = await running.wrap(Buffer.alloc(32, 1), 'ctx-1');
    assert.equal(running.versionOf(old), '1');

    const ceremony = await unsealed(); // the custodians' quorum, in the CLI
    assert.equal(await ceremony.rotateMaster(), '2');
    const fresh = await ceremony.wrap(Buffer.alloc(32, 2), 'ctx-2');
    assert.equal(ceremony.versionOf(fresh), '2');
    assert.deepEqual(await running.unwrap(fresh, 'ctx-2'), Buffer.alloc(32, 2), 'the running vault reads v2');

    const restarted = await LocalSealedKeyProvider.open(file, 'production');
    assert.equal(restarted.masterVersion, '2', 'known from the file while sealed');
    await restarted.submitShare(shares[0] as string);
    await restarted.submitShare(shares[2] as string);
    assert.deepEqual(await restarted.unwrap(old, 'ctx-1'), Buffer.alloc(32, 1));
    assert.deepEqual(await restarted.unwrap(fresh, 'ctx-2'), Buffer.alloc(32, 2));

    await assert.rejects(ceremony.destroyMasterVersion('2'), /active|current|in use|wraps/i);
    assert.equal(await ceremony.destroyMasterVersion('1'), true);
    const after = await unsealed();
    assert.deepEqual(after.masterVersions(), ['2']);
    await assert.rejects(after.unwrap(old, 'ctx-1'), (e: unknown) => isCardholdError(e));
    assert.deepEqual(await after.unwrap(fresh, 'ctx-2'), Buffer.alloc(32, 2));
    for (const p of [running, ceremony, restarted, after]) await p.close();
  });
});

describe('master key rotation of the aws-kms provider (to a new KMS key)', () => {
  test('the previous key decrypts what it wrapped, bare or named; the new key wraps', async () => {
    const oldKms = await startKmsStandIn('arn:aws:kms:eu-west-1:000000000000:key/old');
    const newKms = await startKmsStandIn('arn:aws:kms:eu-west-1:000000000000:key/new');
    const client = (kms: typeof oldKms) =>
      new AwsKmsClient({
        keyId: kms.keyId,
        region: 'eu-west-1',
        endpoint: kms.endpoint,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-secret' },
      });
    try {
      const before = new KmsKeyProvider(client(oldKms), 'production');
      const named = await before.wrap(Buffer.alloc(32, 3), 'ctx');
      assert.equal(before.versionOf(named), oldKms.keyId);
      const bareClient = client(oldKms);
      const bare = await bareClient.encrypt(Buffer.alloc(32, 4), {
        'cardhold:context': 'ctx',
        'cardhold:environment': 'production',
      });
      const rotated = new KmsKeyProvider(client(newKms), 'production', [client(oldKms)]);
      assert.equal(rotated.masterVersion, newKms.keyId);
      assert.deepEqual(rotated.masterVersions(), [oldKms.keyId, newKms.keyId]);
      assert.deepEqual(await rotated.unwrap(named, 'ctx'), Buffer.alloc(32, 3));
      assert.deepEqual(await rotated.unwrap(bare, 'ctx'), Buffer.alloc(32, 4));
      const moved = await rotated.wrap(Buffer.alloc(32, 3), 'ctx');
      assert.equal(rotated.versionOf(moved), newKms.keyId);
      assert.equal(await rotated.destroyMasterVersion(oldKms.keyId), false, 'deletion is the operator’s');
      await assert.rejects(rotated.rotateMaster(), /CARDHOLD_KMS_PREVIOUS_KEY_IDS/);
      const onlyNew = new KmsKeyProvider(client(newKms), 'production');
      await assert.rejects(onlyNew.unwrap(named, 'ctx'), (e: unknown) => isCardholdError(e));
      for (const p of [before, rotated, onlyNew]) await p.close();
      await bareClient.close();
    } finally {
      await oldKms.close();
      await newKms.close();
    }
  });
});
