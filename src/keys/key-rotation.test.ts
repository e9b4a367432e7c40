import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { allTestPans } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { openAudit } from '../audit/open-audit.ts';
import { verifyTrail } from '../audit/verify.ts';
import { loadConfig } from '../config/config.ts';
import type { VaultServices } from '../platform/platform.ts';
import { createLogger } from '../shared/logger.ts';
import { Secret } from '../shared/secret.ts';
import { runKeyJob } from './key-jobs.ts';
import { KeyLifecycle } from './key-lifecycle.ts';

const auditEvent = (t: TestPlatform) => ({
  actor: t.access.actor,
  origin: t.access.origin,
  resource: { type: 'token', id: 'tok_audit_rotation' },
  merchantId: t.merchantId,
  outcome: 'success' as const,
});
const card = (pan: string) => ({ pan: new Secret(pan), expMonth: 12, expYear: futureYear });

for (const backend of backends()) {
  describe(`key rotation and rewrap (${backend})`, () => {
    let t: TestPlatform;
    let vault: VaultServices;
    let lifecycle: KeyLifecycle;
    const written = new Map<string, string>();

    before(async () => {
      t = await startTestPlatform(backend, 'key-rotation');
      vault = t.platform.services.vault as VaultServices;
      lifecycle = new KeyLifecycle({
        sql: vault.sql,
        provider: vault.keys.provider,
        trail: vault.audit.trail,
        keys: vault.keys,
        retireGraceSeconds: 0,
      });
    });
    after(() => t.close());

    const versions = async () =>
      t.adminSql<{ id: string; kek_version: number; aad_version: number }[]>`
        select id, kek_version, aad_version from vault.tokens where merchant_id = ${t.merchantId} order by id`;
    const revealAll = async () => {
      for (const [id, pan] of written) {
        const card = await vault.tokens.reveal(t.access, id, 'key rotation test');
        assert.equal(card.pan.expose() === pan, true, `token ${id} opens to its own card`);
      }
    };
    const tokenize = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const pan = allTestPans[i % allTestPans.length] as string;
        const { token } = await vault.tokens.tokenize(t.access, card(pan));
        written.set(token.id, pan);
      }
    };

    test('a rewrap killed halfway and run again leaves every token readable and under the newest version', async () => {
      await tokenize(23);
      const rotated = await lifecycle.rotate(t.access, 'pan', t.merchantId);
      assert.deepEqual([rotated.previous, rotated.version], [1, 2]);
      await tokenize(3); // new writes use version 2
      const before = await versions();
      assert.equal(before.filter((r) => r.kek_version === 1).length, 23);
      assert.equal(before.filter((r) => r.kek_version === 2).length, 3);

      await assert.rejects(lifecycle.retire(t.access, t.merchantId, 'pan', 1), {
        code: 'key_version_in_use',
      });
      await assert.rejects(lifecycle.retire(t.access, t.merchantId, 'pan', 2), {
        code: 'key_version_in_use',
      });

      const deps = { sql: vault.sql, keys: vault.keys, trail: vault.audit.trail, who: t.access };
      const killed = new Error('killed by the test');
      await assert.rejects(
        runKeyJob(deps, 'rewrap', t.merchantId, {
          batchSize: 5,
          afterBatch: (batch) => {
            if (batch === 2) throw killed;
          },
        }),
        killed,
      );
      const halfway = await versions();
      assert.equal(halfway.filter((r) => r.kek_version === 1).length, 13, 'two batches of five moved');
      const [job] = await t.adminSql<{ state: string; done: string; cursor: string }[]>`
        select state, done, cursor from vault.key_jobs where merchant_id = ${t.merchantId} and kind = 'rewrap'`;
      assert.equal(job?.state, 'running');
      assert.equal(Number(job?.done), 10);
      await revealAll();

      const progress: number[] = [];
      const result = await runKeyJob(deps, 'rewrap', t.merchantId, {
        batchSize: 5,
        onProgress: (p) => progress.push(p.done),
      });
      assert.equal(result.remaining, 0);
      assert.equal(result.done, 23, 'each record moved once across both runs');
      assert.deepEqual(progress, [15, 20, 23]);
      const afterwards = await versions();
      assert.equal(afterwards.length, 26, 'no token lost');
      assert.ok(
        afterwards.every((r) => r.kek_version === 2),
        'every data key under the newest version',
      );
      assert.equal(
        afterwards.filter((r) => r.aad_version === 1).length,
        23,
        'the ciphertext AAD is unchanged',
      );
      await revealAll();

      const again = await runKeyJob(deps, 'rewrap', t.merchantId, { batchSize: 5 });
      assert.equal(again.ran, false, 'nothing left to do: the job is idempotent');
    });

    test('a retired version is destroyed and decrypts nothing', async () => {
      const [victim] = await t.adminSql<{ id: string; wrapped_dek: Buffer }[]>`
        select id, wrapped_dek from vault.tokens
        where merchant_id = ${t.merchantId} and aad_version = 1 order by id limit 1`;
      assert.ok(victim);
      // A backup copy of the record as it was under version 1 (rewrap it back with the old key).
      const { rewrapDataKey } = await import('./envelope.ts');
      const { panAad } = await import('../vault/card-record.ts');
      const v1 = await vault.keys.version(t.merchantId, 'pan', 1);
      const v2 = await vault.keys.version(t.merchantId, 'pan', 2);
      const oldCopy = rewrapDataKey(v2, v1, victim.wrapped_dek, panAad(t.merchantId, victim.id, 1));

      assert.deepEqual(await lifecycle.retireUnreferenced(t.access, t.merchantId, 'pan'), [1]);
      const [kek] = await t.adminSql<{ state: string; wrapped_key: Buffer }[]>`
        select state, wrapped_key from vault.key_encryption_keys
        where merchant_id = ${t.merchantId} and purpose = 'pan' and version = 1`;
      assert.equal(kek?.state, 'retired');
      assert.equal(kek?.wrapped_key.length, 0, 'the wrapped material is gone');

      await t.adminSql`update vault.tokens set wrapped_dek = ${oldCopy}, kek_version = 1 where id = ${victim.id}`;
      vault.keys.forget();
      await assert.rejects(vault.tokens.reveal(t.access, victim.id, 'retired'), {
        code: 'token_integrity_failed',
      });
      await assert.rejects(vault.keys.version(t.merchantId, 'pan', 1), { code: 'token_integrity_failed' });
      await assert.rejects(lifecycle.retire(t.access, t.merchantId, 'pan', 9), {
        code: 'key_version_not_found',
      });
      await t.adminSql`delete from vault.tokens where id = ${victim.id}`;
      written.delete(victim.id);
    });

    test('a compromised version: everything under it moves to a new version, then it is destroyed', async () => {
      await tokenize(4);
      const declared = await lifecycle.compromise(t.access, t.merchantId, 'pan', 2);
      assert.deepEqual(declared, { compromised: 2, active: 3, rotated: true });
      const deps = { sql: vault.sql, keys: vault.keys, trail: vault.audit.trail, who: t.access };
      const moved = await runKeyJob(deps, 'rewrap', t.merchantId, { batchSize: 7 });
      assert.equal(moved.remaining, 0);
      assert.deepEqual(await lifecycle.retireUnreferenced(t.access, t.merchantId, 'pan'), [2]);
      assert.ok((await versions()).every((r) => r.kek_version === 3));
      await revealAll();
    });

    test('a rewrap overtaken by a newer rotation, a finished job and a retirement stops instead of writing under the retired key', async () => {
      await tokenize(6);
      const first = await lifecycle.rotate(t.access, 'pan', t.merchantId);
      const deps = { sql: vault.sql, keys: vault.keys, trail: vault.audit.trail, who: t.access };
      let resume: () => void = () => {};
      let paused: () => void = () => {};
      const pausedAfterFirstBatch = new Promise<void>((resolve) => {
        paused = resolve;
      });
      // Runner A aims at the first new version and stops after one batch, as if slow.
      const stale = runKeyJob(deps, 'rewrap', t.merchantId, {
        batchSize: 2,
        afterBatch: async (batch) => {
          if (batch !== 1) return;
          paused();
          await new Promise<void>((resolve) => {
            resume = resolve;
          });
        },
      });
      await pausedAfterFirstBatch;
      // Meanwhile: another rotation, runner B re-aims the job and finishes it, and A's version is retired.
      const second = await lifecycle.rotate(t.access, 'pan', t.merchantId);
      assert.equal(second.version, first.version + 1);
      const finished = await runKeyJob(deps, 'rewrap', t.merchantId, { batchSize: 50 });
      assert.equal(finished.target_version, second.version);
      assert.equal(finished.remaining, 0);
      assert.ok((await lifecycle.retireUnreferenced(t.access, t.merchantId, 'pan')).includes(first.version));
      resume();
      await assert.rejects(stale, { code: 'key_job_superseded' });
      const all = await versions();
      assert.ok(
        all.every((r) => r.kek_version === second.version),
        'every data key under the live version',
      );
      await revealAll();
    });

    test('concurrent rotations of one key, and concurrent starts of one job, queue instead of failing', async () => {
      const made = await t.request<{ merchant: { id: string } }>('POST', `${t.apiUrl}/v1/merchants`, {
        key: t.adminToken,
        body: { name: 'Concurrent Keys Ltd' },
      });
      const fresh = made.json.merchant.id;
      // No version yet: the first two rotations would both have picked version 1.
      const rotated = await Promise.all([
        lifecycle.rotate(t.access, 'pan', fresh),
        lifecycle.rotate(t.access, 'pan', fresh),
      ]);
      assert.deepEqual(rotated.map((r) => r.version).sort(), [1, 2]);
      // Two runners of the same rewrap started at once: one starts the job, the other joins it.
      await tokenize(4);
      await lifecycle.rotate(t.access, 'pan', t.merchantId);
      const deps = { sql: vault.sql, keys: vault.keys, trail: vault.audit.trail, who: t.access };
      const runs = await Promise.allSettled([
        runKeyJob(deps, 'rewrap', t.merchantId, { batchSize: 3 }),
        runKeyJob(deps, 'rewrap', t.merchantId, { batchSize: 3 }),
      ]);
      assert.deepEqual(
        runs.map((r) => r.status),
        ['fulfilled', 'fulfilled'],
        JSON.stringify(runs.map((r) => (r.status === 'rejected' ? String(r.reason) : ''))),
      );
      const [active] = await t.adminSql<{ version: number }[]>`
        select version from vault.key_encryption_keys
        where merchant_id = ${t.merchantId} and purpose = 'pan' and state = 'active'`;
      assert.ok((await versions()).every((r) => r.kek_version === active?.version));
      await revealAll();
    });

    test('re-fingerprinting: dedup finds a card under the old and the new fingerprint key throughout', async () => {
      const pan = allTestPans[0] as string;
      const first = await vault.tokens.tokenize(t.access, { ...card(pan), dedup: true });
      assert.equal(first.deduplicated, true, 'an earlier token of this card exists');
      await lifecycle.rotate(t.access, 'fingerprint', t.merchantId);
      const during = await vault.tokens.tokenize(t.access, { ...card(pan), dedup: true });
      assert.equal(during.deduplicated, true, 'found under the old fingerprint key');
      assert.equal(during.token.id, first.token.id);
      assert.equal(during.token.fingerprint, first.token.fingerprint, 'not re-fingerprinted yet');

      const deps = { sql: vault.sql, keys: vault.keys, trail: vault.audit.trail, who: t.access };
      const result = await runKeyJob(deps, 'refingerprint', t.merchantId, { batchSize: 10 });
      assert.equal(result.remaining, 0);
      const [left] = await t.adminSql<{ n: number }[]>`
        select count(*)::int as n from vault.tokens where merchant_id = ${t.merchantId} and fingerprint_version <> 2`;
      assert.equal(left?.n, 0);
      assert.deepEqual(await lifecycle.retireUnreferenced(t.access, t.merchantId, 'fingerprint'), [1]);
      vault.keys.forget();

      const afterwards = await vault.tokens.tokenize(t.access, { ...card(pan), dedup: true });
      assert.equal(afterwards.deduplicated, true, 'found under the new fingerprint key alone');
      assert.equal(afterwards.token.id, first.token.id);
      assert.notEqual(afterwards.token.fingerprint, first.token.fingerprint, 'the fingerprint changed');
      const same = (
        await vault.tokens.list(t.access, { fingerprint: afterwards.token.fingerprint, limit: 100 })
      ).data;
      assert.equal(
        same.length,
        [...written.values()].filter((p) => p === pan).length,
        'every token of the card carries the new fingerprint',
      );
      await revealAll();
    });

    test('rotating the audit keys: new checkpoints use the new signing key and the trail still verifies', async () => {
      await vault.audit.checkpointer?.checkpoint(); // signed by version 1
      const rotated = await lifecycle.rotate(t.access, 'audit', undefined);
      assert.equal(rotated.version, 2);
      const config = loadConfig({ CARDHOLD_DATA_DIR: t.dataDir });
      const audit = await openAudit({
        sql: vault.sql,
        provider: vault.keys.provider,
        service: 'vault',
        config,
        logger: createLogger({ level: 'silent' }),
        signCheckpoints: true,
      });
      await audit.trail.record({ ...auditEvent(t), action: 'token.read' });
      assert.match(audit.trail.keyedHash('x'), /^hk2_/, 'new records hash with the new key');
      await audit.close(); // signs a last checkpoint, with version 2
      const versionsUsed = await t.adminSql<{ key_version: number }[]>`
        select distinct key_version from audit.checkpoints order by key_version`;
      assert.deepEqual(
        versionsUsed.map((v) => v.key_version),
        [1, 2],
      );
      const report = await verifyTrail(t.adminSql);
      assert.equal(report.ok, true, JSON.stringify(report.first_problem));
    });

    test('every key operation is in the audit trail', async () => {
      const rows = await t.adminSql<{ action: string; resource_id: string }[]>`
        select action, resource_id from audit.records
        where merchant_id = ${t.merchantId} and action like 'key.%' order by seq`;
      const actions = rows.map((r) => `${r.action} ${r.resource_id.replace(/\/\d+$/, '')}`);
      const m = t.merchantId;
      for (const expected of [
        `key.create ${m}/pan/v1`,
        `key.rotate ${m}/pan/v2`,
        `key.rewrap_start rewrap/${m}`,
        `key.rewrap_finish rewrap/${m}`,
        `key.retire ${m}/pan/v1`,
        `key.rotate ${m}/pan/v3`,
        `key.compromise ${m}/pan/v2`,
        `key.destroy ${m}/pan/v2`,
        `key.rotate ${m}/fingerprint/v2`,
        `key.rewrap_start refingerprint/${m}`,
        `key.rewrap_finish refingerprint/${m}`,
        `key.retire ${m}/fingerprint/v1`,
      ]) {
        assert.ok(actions.includes(expected), `${expected} is recorded`);
      }
    });
  });
}
