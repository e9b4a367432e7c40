import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Sql } from 'postgres';
import { testCards } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { CvvSlots } from '../vault/cvv-slots.ts';
import { loadPublicSigningKeys } from './audit-keys.ts';
import { recordHash } from './record-hash.ts';
import { rowToRecord, type VerifyReport, verifyTrail } from './verify.ts';

const run = promisify(execFile);

interface Row {
  seq: string;
  lane: number;
  lane_seq: string;
  hash: Buffer;
  [column: string]: unknown;
}

/** Everything an attacker with the database owner's rights could do, with the guard trigger off. */
async function tamper(sql: Sql, change: (sql: Sql) => Promise<unknown>): Promise<void> {
  await sql.begin(async (tx) => {
    const db = tx as unknown as Sql;
    await db`alter table audit.records disable trigger user`;
    await db`alter table audit.checkpoints disable trigger user`;
    await change(db);
    await db`alter table audit.records enable trigger user`;
    await db`alter table audit.checkpoints enable trigger user`;
  });
}

async function reinsert(db: Sql, rows: Row[]): Promise<void> {
  for (const r of rows) {
    await db`
      insert into audit.records (seq, lane, lane_seq, occurred_at, actor_type, actor_id, action, resource_type,
        resource_id, merchant_id, outcome, reason, origin, user_agent, request_id, service, details, prev_hash, hash)
      overriding system value
      values (${r.seq}, ${r.lane}, ${r.lane_seq}, ${r['occurred_at'] as Date}, ${r['actor_type'] as string},
        ${r['actor_id'] as string}, ${r['action'] as string}, ${r['resource_type'] as string},
        ${r['resource_id'] as string}, ${r['merchant_id'] as string | null}, ${r['outcome'] as string},
        ${r['reason'] as string | null}, ${r['origin'] as string}, ${r['user_agent'] as string | null},
        ${r['request_id'] as string}, ${r['service'] as string}, ${db.json(r['details'] as never)},
        ${r['prev_hash'] as Buffer}, ${r.hash})`;
  }
}

for (const backend of backends()) {
  describe(`audit trail verification detects tampering (${backend})`, () => {
    let t: TestPlatform;
    let lane: Row[];
    before(async () => {
      t = await startTestPlatform(backend, 'audit-verify');
      const vault = t.platform.services.vault!;
      for (let i = 0; i < 12; i++) {
        await t.request('POST', `${t.vaultUrl}/v1/tokens`, {
          body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
        });
      }
      await vault.audit.checkpointer!.checkpoint();
      // The busiest lane: sequential requests reuse one lane, so most records are in it.
      const counts = await t.adminSql<{ lane: number; n: string }[]>`
        select lane, count(*) as n from audit.records group by lane order by count(*) desc limit 1`;
      lane = await t.adminSql<Row[]>`
        select * from audit.records where lane = ${counts[0]!.lane} order by lane_seq`;
      assert.ok(lane.length >= 10, 'a lane with enough records');
    });
    after(async () => t?.close());

    const verify = (options = {}) => verifyTrail(t.adminSql, options);
    const assertIntact = async () => {
      const report = await verify();
      assert.equal(report.ok, true, JSON.stringify(report.first_problem));
      assert.ok(report.records_checked > 0 && report.checkpoints_checked > 0);
    };
    const firstProblem = (report: VerifyReport) => {
      assert.equal(report.ok, false);
      assert.ok(report.first_problem);
      return report.first_problem;
    };

    test('an untouched trail verifies, from the start and from a checkpoint', async () => {
      await assertIntact();
      const checkpoints = await t.adminSql<{ id: string }[]>`select id from audit.checkpoints order by id`;
      const last = checkpoints.at(-1)!;
      const partial = await verify({ fromCheckpoint: String(last.id) });
      assert.equal(partial.ok, true, JSON.stringify(partial.first_problem));
      assert.ok(partial.records_checked < (await verify()).records_checked);
      const unknown = await verify({ fromCheckpoint: '999999' });
      assert.equal(firstProblem(unknown).kind, 'checkpoint_unknown');
    });

    /** Tampers, checks what verify reports, and always undoes the change (later tests start intact). */
    const scenario = async (
      change: (db: Sql) => Promise<unknown>,
      restore: (db: Sql) => Promise<unknown>,
      check: (report: VerifyReport) => void,
    ) => {
      await tamper(t.adminSql, change);
      try {
        check(await verify());
      } finally {
        await tamper(t.adminSql, restore);
      }
      await assertIntact();
    };

    test('an edited field is named by its record', async () => {
      const target = lane[4]!;
      await scenario(
        (db) => db`update audit.records set actor_id = 'someone-else' where seq = ${target.seq}`,
        (db) =>
          db`update audit.records set actor_id = ${target['actor_id'] as string} where seq = ${target.seq}`,
        (report) => {
          const problem = firstProblem(report);
          assert.equal(problem.kind, 'hash_mismatch');
          assert.equal(problem.seq, String(target.seq));
        },
      );
    });

    test('a deleted record is named by the gap after it', async () => {
      const target = lane[4]!;
      await scenario(
        (db) => db`delete from audit.records where seq = ${target.seq}`,
        (db) => reinsert(db, [target]),
        (report) => {
          const problem = firstProblem(report);
          assert.equal(problem.kind, 'missing_record');
          assert.equal(problem.seq, String(lane[5]!.seq));
          assert.match(
            problem.detail,
            new RegExp(`jumps from ${BigInt(target.lane_seq) - 1n} to ${lane[5]!.lane_seq}`),
          );
        },
      );
    });

    test('an inserted forged record (with a correct hash of its own) breaks the record after it', async () => {
      const at = lane[4]!;
      const forged = rowToRecord({ ...at, actor_id: 'forged' } as never);
      forged.prevHash = lane[3]!.hash;
      forged.hash = recordHash(forged);
      await scenario(
        async (db) => {
          await db`update audit.records set lane_seq = lane_seq + 1000000 where lane = ${at.lane} and lane_seq >= ${at.lane_seq}`;
          await db`update audit.records set lane_seq = lane_seq - 999999 where lane = ${at.lane} and lane_seq >= 1000000`;
          await db`insert into audit.records ${db({
            lane: forged.lane,
            lane_seq: forged.laneSeq.toString(),
            occurred_at: forged.occurredAt,
            actor_type: forged.actorType,
            actor_id: forged.actorId,
            action: forged.action,
            resource_type: forged.resourceType,
            resource_id: forged.resourceId,
            merchant_id: forged.merchantId,
            outcome: forged.outcome,
            reason: forged.reason,
            origin: forged.origin,
            user_agent: forged.userAgent,
            request_id: forged.requestId,
            service: forged.service,
            details: db.json(forged.details as never),
            prev_hash: forged.prevHash,
            hash: forged.hash,
          } as never)}`;
        },
        async (db) => {
          await db`delete from audit.records where lane = ${at.lane} and actor_id = 'forged'`;
          await db`update audit.records set lane_seq = lane_seq + 1000000 where lane = ${at.lane} and lane_seq > ${at.lane_seq}`;
          await db`update audit.records set lane_seq = lane_seq - 1000001 where lane = ${at.lane} and lane_seq > 1000000`;
        },
        (report) => {
          // The forged record itself chains correctly; the genuine one it displaced no longer does.
          const problem = firstProblem(report);
          assert.equal(problem.seq, String(at.seq));
          assert.ok(['broken_link', 'hash_mismatch'].includes(problem.kind), problem.kind);
          assert.ok(!report.problems.some((p) => p.kind === 'missing_record'));
        },
      );
    });

    test('two swapped records are named', async () => {
      const [a, b] = [lane[4]!, lane[5]!];
      const swap = async (db: Sql) => {
        await db`update audit.records set lane_seq = 999999 where seq = ${a.seq}`;
        await db`update audit.records set lane_seq = ${a.lane_seq} where seq = ${b.seq}`;
        await db`update audit.records set lane_seq = ${b.lane_seq} where seq = ${a.seq}`;
      };
      const unswap = async (db: Sql) => {
        await db`update audit.records set lane_seq = 999999 where seq = ${a.seq}`;
        await db`update audit.records set lane_seq = ${b.lane_seq} where seq = ${b.seq}`;
        await db`update audit.records set lane_seq = ${a.lane_seq} where seq = ${a.seq}`;
      };
      await scenario(swap, unswap, (report) => {
        const problem = firstProblem(report);
        assert.ok(['hash_mismatch', 'broken_link'].includes(problem.kind), problem.kind);
        assert.ok([String(a.seq), String(b.seq)].includes(problem.seq as string));
      });
    });

    test('a cut tail is detected against the last signed checkpoint', async () => {
      const tail = lane.slice(-3);
      await scenario(
        (db) => db`delete from audit.records where seq in ${db(tail.map((r) => r.seq))}`,
        (db) => reinsert(db, tail),
        (report) => {
          const problem = firstProblem(report);
          assert.equal(problem.kind, 'truncated');
          assert.equal(problem.lane, lane[0]!.lane);
          assert.match(problem.detail, new RegExp(`now ends at ${lane.at(-4)!.lane_seq}`));
        },
      );
    });

    test('a rewritten chain (every hash recomputed) is caught by the signed checkpoint', async () => {
      const original = lane.slice(4);
      await scenario(
        async (db) => {
          let prev = lane[3]!.hash;
          for (const [i, row] of original.entries()) {
            const record = rowToRecord(row as never);
            if (i === 0) record.actorId = 'rewritten';
            record.prevHash = prev;
            record.hash = recordHash(record);
            prev = record.hash;
            await db`update audit.records set actor_id = ${record.actorId}, prev_hash = ${record.prevHash}, hash = ${record.hash} where seq = ${row.seq}`;
          }
        },
        async (db) => {
          for (const row of original) {
            await db`update audit.records set actor_id = ${row['actor_id'] as string}, prev_hash = ${row['prev_hash'] as Buffer}, hash = ${row.hash} where seq = ${row.seq}`;
          }
        },
        (report) => {
          assert.equal(report.ok, false);
          assert.ok(
            report.problems.every((p) => p.kind === 'checkpoint_mismatch'),
            'no hash or link is broken',
          );
          assert.ok(report.first_problem?.checkpoint);
        },
      );
    });

    test('a changed checkpoint fails its signature', async () => {
      const [checkpoint] = await t.adminSql<{ id: string; statement: Buffer }[]>`
        select id, statement from audit.checkpoints order by id desc limit 1`;
      const { id, statement } = checkpoint!;
      const changed = Buffer.from(statement.toString('utf8').replace('"v":1', '"v":1 '));
      await scenario(
        (db) => db`update audit.checkpoints set statement = ${changed} where id = ${id}`,
        (db) => db`update audit.checkpoints set statement = ${statement} where id = ${id}`,
        (report) => {
          const problem = firstProblem(report);
          assert.equal(problem.kind, 'checkpoint_signature_invalid');
          assert.equal(problem.checkpoint, String(id));
        },
      );
    });

    test('checkpoints re-signed with a key swapped into the database verify only until the real keys are pinned', async () => {
      const real = (await loadPublicSigningKeys(t.adminSql)).map((k) => k.publicKey);
      const stolen = generateKeyPairSync('ed25519');
      const saved = await t.adminSql<
        { id: string; statement: Buffer; signature: Buffer; key_version: number }[]
      >`
        select id, statement, signature, key_version from audit.checkpoints order by id`;
      const keyRows = await t.adminSql<{ version: number; public_key: Buffer }[]>`
        select version, public_key from audit.signing_keys`;
      const swap = async (restore: boolean) =>
        t.adminSql.begin(async (tx) => {
          const db = tx as unknown as Sql;
          await db`alter table audit.checkpoints disable trigger user`;
          await db`alter table audit.signing_keys disable trigger user`;
          for (const k of keyRows) {
            const key = restore ? k.public_key : stolen.publicKey.export({ format: 'der', type: 'spki' });
            await db`update audit.signing_keys set public_key = ${key} where version = ${k.version}`;
          }
          for (const c of saved) {
            const signature = restore ? c.signature : sign(null, c.statement, stolen.privateKey);
            await db`update audit.checkpoints set signature = ${signature} where id = ${c.id}`;
          }
          await db`alter table audit.checkpoints enable trigger user`;
          await db`alter table audit.signing_keys enable trigger user`;
        });
      await swap(false);
      try {
        const unpinned = await verify();
        assert.equal(unpinned.ok, true, 'consistent with the keys the database holds');
        assert.equal(unpinned.keys_pinned, false, 'and says so');
        const pinned = await verify({ trustedKeys: real });
        assert.equal(pinned.ok, false);
        assert.equal(pinned.keys_pinned, true);
        const kinds = new Set(pinned.problems.map((p) => p.kind));
        assert.ok(
          kinds.has('signing_key_untrusted') && kinds.has('checkpoint_signature_invalid'),
          [...kinds].join(),
        );
      } finally {
        await swap(true);
      }
      const genuine = await verify({ trustedKeys: real });
      assert.equal(genuine.ok, true, JSON.stringify(genuine.first_problem));
      assert.equal(genuine.keys_pinned, true);
    });

    test('`cardhold audit-log verify` and `export` from the command line', async () => {
      const target = t.platform.services.databaseTarget!;
      const env = {
        ...process.env,
        CARDHOLD_DATA_DIR: t.dataDir,
        CARDHOLD_LOG_LEVEL: 'silent',
        ...(target.kind === 'url' ? { CARDHOLD_DATABASE_URL: target.url } : {}),
      };
      const cli = (...args: string[]) =>
        run(process.execPath, [path.resolve('bin/cardhold.js'), 'audit-log', ...args], { env }).then(
          (r) => ({ code: 0, stdout: r.stdout }),
          (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
        );
      const intact = await cli('verify');
      assert.equal(intact.code, 0, intact.stdout);
      assert.match(intact.stdout, /the audit trail is intact/);

      const target4 = lane[4]!;
      await tamper(
        t.adminSql,
        (db) => db`update audit.records set outcome = 'failure' where seq = ${target4.seq}`,
      );
      const broken = await cli('verify');
      assert.equal(broken.code, 3);
      assert.match(
        broken.stdout,
        new RegExp(`FAILED verification .*first: hash_mismatch at record ${target4.seq}, lane`),
      );
      await tamper(
        t.adminSql,
        (db) => db`update audit.records set outcome = 'success' where seq = ${target4.seq}`,
      );

      const from = new Date(Date.now() - 3600_000).toISOString();
      const to = new Date(Date.now() + 60_000).toISOString();
      const exported = await cli('export', '--from', from, '--to', to);
      assert.equal(exported.code, 0);
      const lines = exported.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { action: string; hash: string });
      assert.ok(lines.length >= 12 && lines.every((l) => l.hash.length === 64));
      // Both command-line reads are on record, by the operating-system user.
      const reads = await t.adminSql<{ action: string; actor_type: string; service: string }[]>`
        select action, actor_type, service from audit.records where service = 'cli' order by seq`;
      assert.deepEqual(
        reads.map((r) => r.action),
        ['audit.verify', 'audit.verify', 'audit.read'],
      );
      assert.ok(reads.every((r) => r.actor_type === 'user'));
      const keys = await cli('public-keys');
      assert.match(keys.stdout, /-----BEGIN PUBLIC KEY-----/);
      assert.match(intact.stdout, /checked with the keys stored in the database/);
      const pinnedFile = path.join(t.dataDir, 'audit-public-keys.pem');
      await writeFile(pinnedFile, keys.stdout);
      const pinned = await cli('verify', '--public-key', pinnedFile);
      assert.equal(pinned.code, 0, pinned.stdout);
      assert.doesNotMatch(pinned.stdout, /keys stored in the database/);
      const other = path.join(t.dataDir, 'other-public-key.pem');
      await writeFile(
        other,
        generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString(),
      );
      const wrongKey = await cli('verify', '--public-key', other);
      assert.equal(wrongKey.code, 3, 'checkpoints signed by a key that is not pinned fail');
      await assertIntact();
    });
  });

  describe(`concurrent tokenizes share statements and stay correct (${backend})`, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(backend, 'audit-batching');
    });
    after(async () => t?.close());

    test('a burst of tokenizes, one of them refused by the database, settles each on its own', async () => {
      // A trigger refuses exactly one card (expiry year 2039): the shared statement it lands in fails,
      // and every other card in that batch must still succeed on its own.
      await t.adminSql.unsafe(`
        create function vault.refuse_2039() returns trigger language plpgsql as $$
        begin if new.exp_year = 2039 then raise exception 'refused for the test'; end if; return new; end $$;
        create trigger refuse_2039 before insert on vault.tokens for each row execute function vault.refuse_2039();`);
      const before = Number(
        (await t.adminSql<{ n: string }[]>`select count(*) as n from vault.tokens`)[0]!.n,
      );
      const replies = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          t.request<{ token: { id: string }; cvv_slot: { id: string } | null }>(
            'POST',
            `${t.vaultUrl}/v1/tokens`,
            {
              body: {
                pan: i % 2 ? testCards.visa : testCards.mastercard,
                exp_month: 12,
                exp_year: i === 17 ? 2039 : 2030,
                ...(i % 3 === 0 ? { cvv: '739' } : {}),
              },
            },
          ),
        ),
      );
      const statuses = replies.map((r) => r.status);
      assert.equal(statuses[17], 500);
      assert.deepEqual(new Set(statuses.filter((_, i) => i !== 17)), new Set([201]));
      const ids = replies.filter((r) => r.status === 201).map((r) => r.json.token.id);
      assert.equal(new Set(ids).size, 39);
      const after = Number((await t.adminSql<{ n: string }[]>`select count(*) as n from vault.tokens`)[0]!.n);
      assert.equal(after - before, 39, 'exactly the accepted cards were stored');
      const created = await t.adminSql<{ resource_id: string }[]>`
        select resource_id from audit.records where action = 'token.create' and resource_id in ${t.adminSql(ids)}`;
      assert.equal(created.length, 39, 'one record per token, none for the refused card');
      const slots = replies.filter((r, i) => r.status === 201 && i % 3 === 0);
      assert.ok(slots.every((r) => r.json.cvv_slot !== null));
      assert.equal(
        await t.platform.services.vault!.volatile.count(CvvSlots.keyPrefix(t.merchantId)),
        slots.length,
        'no orphaned CVV slot',
      );
      await t.platform.services.vault!.audit.checkpointer!.checkpoint();
      assert.equal((await verifyTrail(t.adminSql)).ok, true);
    });
  });

  describe(`audit trail fails closed (${backend})`, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(backend, 'audit-fail-closed');
    });
    after(async () => t?.close());

    test('with the trail unwritable, tokenize, read and delete answer 503 and change nothing', async () => {
      const created = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
        body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
      });
      assert.equal(created.status, 201);
      const id = created.json.token.id;
      const count = async () =>
        Number((await t.adminSql<{ n: string }[]>`select count(*) as n from vault.tokens`)[0]!.n);
      const slots = () => t.platform.services.vault!.volatile.count(CvvSlots.keyPrefix(t.merchantId));
      const before = { tokens: await count(), slots: await slots() };

      await t.adminSql`revoke insert on audit.records from cardhold_vault_runtime`;
      try {
        const tokenize = await t.request<{ code: string }>('POST', `${t.vaultUrl}/v1/tokens`, {
          body: { pan: testCards.mastercard, exp_month: 12, exp_year: futureYear, cvv: '739' },
        });
        assert.equal(tokenize.status, 503);
        assert.equal(tokenize.json.code, 'audit_unavailable');
        const read = await t.request<{ code: string }>('GET', `${t.vaultUrl}/v1/tokens/${id}`);
        assert.equal(read.status, 503);
        assert.equal(read.json.code, 'audit_unavailable');
        assert.ok(!read.text.includes('424242'), 'no card data served');
        const del = await t.request<{ code: string }>('DELETE', `${t.vaultUrl}/v1/tokens/${id}`);
        assert.equal(del.status, 503);
        assert.deepEqual({ tokens: await count(), slots: await slots() }, before, 'nothing changed');
        const metrics = await t.request('GET', t.platform.metricsUrls.vault as string, { key: null });
        const failures = /^cardhold_audit_write_failures_total(?:\{[^}]*\})? (\d+)$/m.exec(metrics.text);
        assert.ok(
          failures && Number(failures[1]) >= 3,
          `the failures are counted for alerting: ${failures?.[0]}`,
        );
      } finally {
        await t.adminSql`grant insert on audit.records to cardhold_vault_runtime`;
      }
      // Restored: the same operations work again, and the trail still verifies.
      assert.equal((await t.request('GET', `${t.vaultUrl}/v1/tokens/${id}`)).status, 200);
      assert.equal((await t.request('DELETE', `${t.vaultUrl}/v1/tokens/${id}`)).status, 204);
      assert.equal((await verifyTrail(t.adminSql)).ok, true);
    });
  });
}
