import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { backends, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { problemHandler } from '../http/problem.ts';
import { CardholdError, type ErrorCode } from '../shared/errors.ts';
import { Idempotency } from './idempotency.ts';

/**
 * The key store's rules on their own, against the real payments schema: which failures free a key,
 * which are kept and replayed, and the 24-hour window. The end-to-end cases (concurrent duplicates,
 * replayed declines) are in payments.test.ts.
 */
const backend = backends().at(-1) ?? 'embedded';

describe(`idempotency keys (${backend})`, () => {
  let t: TestPlatform;
  let app: FastifyInstance;
  let idempotency: Idempotency;
  let runs = 0;
  /** What the next run of the work does: answer, or throw this error code. */
  let next: ErrorCode | 'ok' = 'ok';

  before(async () => {
    t = await startTestPlatform(backend, 'idempotency', { roles: ['vault', 'api'] });
    idempotency = new Idempotency(t.adminSql);
    app = Fastify();
    app.setErrorHandler(problemHandler);
    app.post('/work', (request, reply) =>
      idempotency.handle(request, reply, t.merchantId, async () => {
        runs++;
        if (next !== 'ok') throw new CardholdError(next);
        return { status: 200, body: { run: runs } };
      }),
    );
    app.post('/work/:id', (request, reply) =>
      idempotency.handle(request, reply, t.merchantId, async () => {
        runs++;
        return { status: 200, body: { run: runs, id: (request.params as { id: string }).id } };
      }),
    );
    await app.ready();
  });
  after(async () => {
    await app?.close();
    await t?.close();
  });

  const call = (key: string, payload: Record<string, unknown> = { amount: 100 }) =>
    app.inject({ method: 'POST', url: '/work', headers: { 'idempotency-key': key }, payload });
  let counter = 0;
  const freshKey = () => `k-${Date.now().toString(36)}-${counter++}`;

  test('a server error that may have come after a processor acted is kept and replayed, not run again', async () => {
    for (const code of ['internal_error', 'storage_unavailable', 'vault_answer_lost'] as const) {
      const key = freshKey();
      next = code;
      const first = await call(key);
      assert.ok(first.statusCode >= 500, first.body);
      assert.equal(first.json().code, code);
      const before = runs;
      next = 'ok';
      const second = await call(key);
      assert.equal(runs, before, `${code}: the work did not run again`);
      assert.equal(second.statusCode, first.statusCode);
      assert.equal(second.headers['idempotent-replayed'], 'true');
      assert.equal(second.json().code, code);
    }
  });

  test('a server error that proves nothing was done, or a conflict with a concurrent operation, frees the key: the retry runs', async () => {
    for (const code of ['processor_unavailable', 'vault_unavailable', 'payment_in_progress'] as const) {
      const key = freshKey();
      next = code;
      const first = await call(key);
      assert.ok(first.statusCode === 503 || first.statusCode === 409, first.body);
      const before = runs;
      next = 'ok';
      const second = await call(key);
      assert.equal(runs, before + 1, `${code}: the retry ran`);
      assert.equal(second.statusCode, 200);
      assert.equal(second.headers['idempotent-replayed'], undefined);
    }
  });

  test('an answer is replayed for 24 hours and not after; purge removes keys past their lifetime', async () => {
    next = 'ok';
    const key = freshKey();
    const first = await call(key);
    assert.equal(first.statusCode, 200);
    const age = (hours: number) =>
      t.adminSql`update payments.idempotency_keys set created_at = now() - ${`${hours} hours`}::interval
        where merchant_id = ${t.merchantId} and key = ${key}`;
    await age(23.9);
    const before = runs;
    const replayed = await call(key);
    assert.equal(runs, before);
    assert.equal(replayed.headers['idempotent-replayed'], 'true');
    assert.deepEqual(replayed.json(), first.json());
    // Different parameters under the same key, within the window: refused.
    assert.equal((await call(key, { amount: 101 })).json().code, 'idempotency_key_reused');
    await age(24.1);
    const again = await call(key, { amount: 101 });
    assert.equal(runs, before + 1, 'past 24 hours the key is new again');
    assert.equal(again.statusCode, 200);

    const stale = freshKey();
    await call(stale);
    await t.adminSql`update payments.idempotency_keys set created_at = now() - interval '25 hours'
      where merchant_id = ${t.merchantId} and key = ${stale}`;
    assert.ok((await idempotency.purge()) >= 1);
    const left = await t.adminSql`
      select 1 from payments.idempotency_keys where merchant_id = ${t.merchantId} and key = ${stale}`;
    assert.equal(left.length, 0);
  });

  test('the same key on the same payment path replays however the path is percent-encoded; another path is another request', async () => {
    const key = freshKey();
    const send = (url: string) =>
      app.inject({ method: 'POST', url, headers: { 'idempotency-key': key }, payload: { amount: 100 } });
    const first = await send('/work/pi_1');
    assert.equal(first.statusCode, 200);
    const before = runs;
    for (const url of ['/work/pi%5F1', '/work/%70i_1', '/work/pi_1?expand=x']) {
      const again = await send(url);
      assert.equal(again.headers['idempotent-replayed'], 'true', url);
      assert.deepEqual(again.json(), first.json(), url);
    }
    assert.equal(runs, before, 'the work ran once');
    assert.equal((await send('/work/pi_2')).json().code, 'idempotency_key_reused');
    // A plain path hashes as it did before paths were normalised: keys stored by an earlier version
    // (another replica during an upgrade) still match their retries, both ways.
    const [row] = await t.adminSql<{ request_hash: Buffer }[]>`
      select request_hash from payments.idempotency_keys where merchant_id = ${t.merchantId} and key = ${key}`;
    const earlier = createHash('sha256').update('POST /work/pi_1\n').update('{"amount":100}').digest();
    assert.ok(row?.request_hash.equals(earlier));
  });
});
