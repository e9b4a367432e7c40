import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Sql } from 'postgres';
import { testCards } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { verifyTrail } from './verify.ts';

interface Row {
  seq: string;
  lane: number;
  lane_seq: string;
  occurred_at: Date;
  actor_type: string;
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  merchant_id: string | null;
  outcome: string;
  reason: string | null;
  origin: string;
  user_agent: string | null;
  request_id: string;
  service: string;
  details: Record<string, unknown>;
  prev_hash: Buffer;
  hash: Buffer;
}

const records = (sql: Sql, action: string) =>
  sql<Row[]>`select * from audit.records where action = ${action} order by seq`;

/** PCI DSS 10.2.2: user, type of event, date and time, outcome, origin, affected resource. */
function assertComplete(row: Row | undefined, expect: Partial<Row>): asserts row is Row {
  assert.ok(row, `a ${expect.action ?? ''} record exists`);
  for (const [key, value] of Object.entries(expect)) assert.deepEqual(row[key as keyof Row], value, key);
  assert.ok(/^\d+$/.test(String(row.seq)) && BigInt(row.lane_seq) > 0n, 'sequence');
  assert.ok(row.occurred_at instanceof Date && Math.abs(Date.now() - row.occurred_at.getTime()) < 600_000);
  assert.equal(row.occurred_at.getTime() % 1, 0);
  for (const field of [
    'actor_type',
    'actor_id',
    'action',
    'resource_type',
    'resource_id',
    'origin',
    'request_id',
    'service',
  ] as const) {
    assert.ok(typeof row[field] === 'string' && row[field].length > 0, `${field} is filled`);
  }
  assert.ok(['success', 'failure'].includes(row.outcome));
  if (row.outcome === 'failure') assert.ok(row.reason, 'a failure names its reason');
  assert.equal(row.hash.length, 32);
  assert.equal(row.prev_hash.length, 32);
}

const headers = { 'user-agent': 'audit-test/1.0', 'x-request-id': 'audit-test-request-1' };

for (const backend of backends()) {
  describe(`audit trail: PCI DSS 10.2.1 events (${backend})`, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(backend, 'audit-events');
    });
    after(async () => t?.close());

    test('10.2.1.1 access to card data: tokenize, read, search, delete, CVV slot', async () => {
      const created = await t.request<{ token: { id: string }; cvv_slot: { id: string } }>(
        'POST',
        `${t.vaultUrl}/v1/tokens`,
        {
          body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear, cvv: '739' },
          headers,
        },
      );
      assert.equal(created.status, 201);
      const id = created.json.token.id;
      assert.equal((await t.request('GET', `${t.vaultUrl}/v1/tokens/${id}`, { headers })).status, 200);
      assert.equal((await t.request('GET', `${t.vaultUrl}/v1/tokens?last4=4242`, { headers })).status, 200);
      assert.equal(
        (await t.request('GET', `${t.vaultUrl}/v1/cvv-slots/${created.json.cvv_slot.id}`, { headers }))
          .status,
        200,
      );
      assert.equal((await t.request('DELETE', `${t.vaultUrl}/v1/tokens/${id}`, { headers })).status, 204);
      assert.equal((await t.request('GET', `${t.vaultUrl}/v1/tokens/${id}`, { headers })).status, 404);

      const keyId = (
        await t.adminSql<{ id: string }[]>`
        select id from identity.api_keys where merchant_id = ${t.merchantId} and revoked_at is null`
      )[0]?.id;
      const common = {
        actor_type: 'merchant_key',
        actor_id: keyId,
        merchant_id: t.merchantId,
        origin: '127.0.0.1',
        user_agent: 'audit-test/1.0',
        request_id: 'audit-test-request-1',
        service: 'vault',
      };
      const byResource = (rows: Row[]) => rows.filter((r) => r.resource_id === id);
      assertComplete(byResource(await records(t.adminSql, 'token.create'))[0], {
        ...common,
        action: 'token.create',
        resource_type: 'token',
        outcome: 'success',
      });
      assertComplete((await records(t.adminSql, 'cvv.create')).at(-1), {
        ...common,
        action: 'cvv.create',
        resource_type: 'cvv_slot',
      });
      const reads = byResource(await records(t.adminSql, 'token.read'));
      assertComplete(reads[0], { ...common, action: 'token.read', outcome: 'success' });
      assertComplete(reads[1], {
        ...common,
        action: 'token.read',
        outcome: 'failure',
        reason: 'token_not_found',
      });
      assertComplete((await records(t.adminSql, 'token.search')).at(-1), {
        ...common,
        action: 'token.search',
      });
      assertComplete((await records(t.adminSql, 'cvv.read')).at(-1), { ...common, action: 'cvv.read' });
      // The same request id is on the response, in the audit records and on the application's log lines.
      const logs = await readdir(path.resolve('test-output', 'logs'));
      const mine = logs.filter((f) => f.startsWith(`audit-events-${backend}-${process.pid}-`));
      const text = (
        await Promise.all(mine.map((f) => readFile(path.resolve('test-output', 'logs', f), 'utf8')))
      ).join('');
      assert.match(text, /"reqId":"audit-test-request-1"[^\n]*"route":"\/v1\/tokens\/:id"/);
      assertComplete(byResource(await records(t.adminSql, 'token.delete'))[0], {
        ...common,
        action: 'token.delete',
      });
      // Reveal (the vault's own use) records its stated reason.
      const again = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
        body: { pan: testCards.mastercard, exp_month: 12, exp_year: futureYear },
      });
      await t.platform.services.vault!.tokens.reveal(t.access, again.json.token.id, 'forward to processor');
      const reveal = (await records(t.adminSql, 'token.reveal')).at(-1);
      assertComplete(reveal, {
        action: 'token.reveal',
        actor_type: 'service',
        resource_id: again.json.token.id,
      });
      assert.equal(reveal.details['reason'], 'forward to processor');
    });

    test('a burst of reads shares statements: each read has one record with its own outcome, and the chain verifies', async () => {
      const tokenize = (pan: string) =>
        t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
          body: { pan, exp_month: 12, exp_year: futureYear },
        });
      const [a, b] = [
        (await tokenize(testCards.visa)).json.token.id,
        (await tokenize(testCards.amex)).json.token.id,
      ];
      const missing = `tok_${'Z'.repeat(22)}`;
      // Two bursts: one where every token exists (the single-statement path), one with a missing token
      // among them (the path that records each read's true outcome in a second statement).
      const plan = [
        [a, a, b, a, b, a, b, a],
        [a, missing, b, a, missing, b, a, a],
      ];
      for (const [burst, ids] of plan.entries()) {
        const requestIds = ids.map((_, i) => `burst-${burst}-${i}-${process.pid}`);
        const answers = await Promise.all(
          ids.map((id, i) =>
            t.request<{ id: string }>('GET', `${t.vaultUrl}/v1/tokens/${id}`, {
              headers: { 'x-request-id': requestIds[i] as string },
            }),
          ),
        );
        for (const [i, id] of ids.entries()) {
          const answer = answers[i];
          assert.equal(answer?.status, id === missing ? 404 : 200, `read ${i} of burst ${burst}`);
          if (id !== missing) assert.equal(answer?.json.id, id);
        }
        const rows = await t.adminSql<Row[]>`
          select * from audit.records where action = 'token.read' and request_id in ${t.adminSql(requestIds)}`;
        assert.equal(rows.length, ids.length, 'one record per read');
        for (const [i, id] of ids.entries()) {
          const row = rows.find((r) => r.request_id === requestIds[i]);
          assertComplete(row, {
            action: 'token.read',
            resource_id: id,
            merchant_id: t.merchantId,
            outcome: id === missing ? 'failure' : 'success',
            reason: id === missing ? 'token_not_found' : null,
          });
        }
      }
      assert.equal((await verifyTrail(t.adminSql)).ok, true);
    });

    test('free text cut at its limit never splits a character, and a NUL never reaches the database: no shared statement fails', async () => {
      const made = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
        body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
      });
      const vault = t.platform.services.vault;
      assert.ok(vault);
      // Reveals batched together: a bad reason would fail every record of their shared statement.
      const reasons = [`${'a'.repeat(255)}\u{1F600}`, 'nul \u0000 in the middle', 'an ordinary reason'];
      const results = await Promise.allSettled(
        reasons.map((reason) => vault.tokens.reveal(t.access, made.json.token.id, reason)),
      );
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'fulfilled', 'fulfilled'],
      );
      const rows = await t.adminSql<{ reason: string; details: { reason?: string } }[]>`
        select reason, details from audit.records where action = 'token.reveal' and resource_id = ${made.json.token.id}`;
      assert.equal(rows.length, 3);
      for (const row of rows) {
        const text = JSON.stringify(row);
        assert.ok(text.isWellFormed() && !text.includes('\\u0000'), 'stored as well-formed text without NUL');
      }
      assert.equal((await verifyTrail(t.adminSql)).ok, true);
    });

    test('10.2.1.2 and 10.2.1.7: administrative actions, creation of merchants and keys', async () => {
      const made = await t.request<{ merchant: { id: string } }>('POST', `${t.apiUrl}/v1/merchants`, {
        key: t.adminToken,
        body: { name: 'Audit Ltd' },
        headers,
      });
      assert.equal(made.status, 201);
      const merchantId = made.json.merchant.id;
      const admin = {
        actor_type: 'admin_token',
        actor_id: 'admin-token',
        origin: '127.0.0.1',
        user_agent: 'audit-test/1.0',
        service: 'api',
      };
      assertComplete(
        (await records(t.adminSql, 'merchant.create')).find((r) => r.resource_id === merchantId),
        {
          ...admin,
          action: 'merchant.create',
          merchant_id: merchantId,
        },
      );
      assert.equal(
        (await t.request('GET', `${t.apiUrl}/v1/merchants/${merchantId}`, { key: t.adminToken, headers }))
          .status,
        200,
      );
      assertComplete((await records(t.adminSql, 'merchant.read')).at(-1), {
        ...admin,
        action: 'merchant.read',
        resource_id: merchantId,
      });
      // The vault created this merchant's key-encrypting keys on first use: system-level objects.
      const tokenized = await t.request('POST', `${t.vaultUrl}/v1/tokens`, {
        body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
      });
      assert.equal(tokenized.status, 201);
      const kek = (await records(t.adminSql, 'key.create')).filter((r) => r.merchant_id === t.merchantId);
      assert.ok(kek.length >= 2, 'pan and fingerprint keys recorded');
      assertComplete(kek[0], {
        action: 'key.create',
        actor_type: 'service',
        resource_type: 'key_encryption_key',
        service: 'vault',
      });
      assertComplete((await records(t.adminSql, 'audit_key.create'))[0], {
        action: 'audit_key.create',
        actor_type: 'service',
      });
    });

    test('10.2.1.3: reading and verifying the trail are recorded', async () => {
      const from = new Date(Date.now() - 3600_000).toISOString();
      const to = new Date(Date.now() + 60_000).toISOString();
      const read = await t.request<{ data: Array<{ action: string; hash: string }> }>(
        'GET',
        `${t.apiUrl}/v1/admin/audit/records?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&limit=1000`,
        { key: t.adminToken, headers },
      );
      assert.equal(read.status, 200);
      assert.ok(read.json.data.some((r) => r.action === 'audit.start'));
      assertComplete((await records(t.adminSql, 'audit.read')).at(-1), {
        action: 'audit.read',
        actor_type: 'admin_token',
        user_agent: 'audit-test/1.0',
        service: 'api',
      });
      const verified = await t.request<{ ok: boolean }>('POST', `${t.apiUrl}/v1/admin/audit/verify`, {
        key: t.adminToken,
        body: {},
        headers,
      });
      assert.equal(verified.status, 200);
      assert.equal(verified.json.ok, true);
      assertComplete((await records(t.adminSql, 'audit.verify')).at(-1), {
        action: 'audit.verify',
        actor_type: 'admin_token',
      });
      const badRange = await t.request<{ code: string }>(
        'GET',
        `${t.apiUrl}/v1/admin/audit/records?from=${encodeURIComponent(to)}&to=${encodeURIComponent(from)}`,
        { key: t.adminToken },
      );
      assert.equal(badRange.status, 422);
      assert.equal(badRange.json.code, 'audit_range_invalid');
    });

    test('10.2.1.4: invalid access attempts, with a refused credential only as a keyed hash', async () => {
      const wrongKey = `sk_test_${'A'.repeat(43)}`;
      assert.equal(
        (await t.request('GET', `${t.vaultUrl}/v1/tokens?limit=1`, { key: wrongKey, headers })).status,
        401,
      );
      assert.equal(
        (
          await t.request('GET', `${t.apiUrl}/v1/merchants/mer_${'0'.repeat(22)}`, {
            key: 'adm_wrong',
            headers,
          })
        ).status,
        401,
      );
      const failures = await records(t.adminSql, 'auth.failure');
      const vaultFailure = failures.find((r) => r.service === 'vault');
      assertComplete(vaultFailure, {
        action: 'auth.failure',
        actor_type: 'anonymous',
        outcome: 'failure',
        reason: 'unauthenticated',
        user_agent: 'audit-test/1.0',
      });
      assert.match(vaultFailure.actor_id, /^hk1_[A-Za-z0-9_-]{22}$/);
      assert.ok(!JSON.stringify(failures).includes(wrongKey), 'the refused key is not stored');
      assertComplete(
        failures.find((r) => r.service === 'api'),
        { action: 'auth.failure', resource_id: '/v1/merchants/:id' },
      );
      // The same wrong key maps to the same keyed hash, so repeated attempts correlate.
      await t.request('GET', `${t.vaultUrl}/v1/tokens?limit=1`, { key: wrongKey });
      const again = (await records(t.adminSql, 'auth.failure')).filter(
        (r) => r.actor_id === vaultFailure.actor_id,
      );
      assert.equal(again.length, 2);
      // A valid key without the permission.
      const limited = await t.request<{ secret: string }>(
        'POST',
        `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`,
        {
          key: t.adminToken,
          body: { scopes: ['tokens:read'] },
        },
      );
      const denied = await t.request('POST', `${t.vaultUrl}/v1/tokens`, {
        key: limited.json.secret,
        body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
      });
      assert.equal(denied.status, 403);
      assertComplete((await records(t.adminSql, 'access.denied')).at(-1), {
        action: 'access.denied',
        actor_type: 'merchant_key',
        merchant_id: t.merchantId,
        reason: 'forbidden',
      });
    });

    test('10.2.1.5: changes to credentials (issue, revoke)', async () => {
      const issued = await t.request<{ id: string }>(
        'POST',
        `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`,
        {
          key: t.adminToken,
          body: { label: 'rotation' },
          headers,
        },
      );
      assert.equal(issued.status, 201);
      const revoked = await t.request(
        'DELETE',
        `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys/${issued.json.id}`,
        {
          key: t.adminToken,
          headers,
        },
      );
      assert.equal(revoked.status, 200);
      const common = {
        actor_type: 'admin_token',
        merchant_id: t.merchantId,
        resource_type: 'api_key',
        resource_id: issued.json.id,
      };
      assertComplete(
        (await records(t.adminSql, 'api_key.create')).find((r) => r.resource_id === issued.json.id),
        { ...common, action: 'api_key.create' },
      );
      assertComplete(
        (await records(t.adminSql, 'api_key.revoke')).find((r) => r.resource_id === issued.json.id),
        { ...common, action: 'api_key.revoke' },
      );
    });

    test('10.2.1.6: initialization and start of the trail', async () => {
      assertComplete((await records(t.adminSql, 'audit.initialize'))[0], {
        action: 'audit.initialize',
        actor_type: 'service',
      });
      const starts = await records(t.adminSql, 'audit.start');
      assert.deepEqual(new Set(starts.map((r) => r.service)), new Set(['vault', 'api']));
      assertComplete(starts[0], { action: 'audit.start', resource_type: 'audit_trail' });
      assert.match(starts[0].origin, /^host:/);
    });

    test('the runtime roles cannot update, delete or truncate the trail, and the trigger stops even the owner', async () => {
      const vaultSql = t.platform.services.vault!.sql;
      const apiSql = t.platform.services.apiSql!;
      for (const sql of [vaultSql, apiSql]) {
        await assert.rejects(sql`update audit.records set actor_id = 'x' where seq = 1`, { code: '42501' });
        await assert.rejects(sql`delete from audit.records where seq = 1`, { code: '42501' });
        await assert.rejects(sql`truncate audit.records`, { code: '42501' });
        await assert.rejects(sql`delete from audit.checkpoints`, { code: '42501' });
      }
      await assert.rejects(t.adminSql`update audit.records set actor_id = 'x' where seq = 1`, /append-only/);
      await assert.rejects(t.adminSql`delete from audit.records where seq = 1`, /append-only/);
      await assert.rejects(t.adminSql`truncate audit.records`, /append-only/);
    });
  });
}

describe('audit trail: start and stop are recorded across a restart (embedded)', () => {
  test('10.2.1.6: the stop of one run and the start of the next', async () => {
    const first = await startTestPlatform('embedded', 'audit-restart');
    const dataDir = first.dataDir;
    await first.close({ keepDataDir: true });
    const second = await startTestPlatform('embedded', 'audit-restart', { dataDir });
    try {
      const stops = await records(second.adminSql, 'audit.stop');
      assert.deepEqual(new Set(stops.map((r) => r.service)), new Set(['vault', 'api']));
      assertComplete(stops[0], { action: 'audit.stop', actor_type: 'service', resource_type: 'audit_trail' });
      const starts = await records(second.adminSql, 'audit.start');
      assert.equal(starts.length, 4, 'two starts per run');
      assert.ok(BigInt(starts.at(-1)!.seq) > BigInt(stops.at(-1)!.seq));
      assert.equal((await records(second.adminSql, 'audit.initialize')).length, 1, 'initialized once');
    } finally {
      await second.close();
    }
  });
});
