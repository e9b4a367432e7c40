import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testCards, testCvvs } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { createLogger } from '../shared/logger.ts';
import { RoleMetrics } from './metrics.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    assert.ok(m, `unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

const namedSeries = [
  ['cardhold_http_requests_total', 'counter'],
  ['cardhold_http_request_duration_seconds', 'histogram'],
  ['cardhold_tokens_created_total', 'counter'],
  ['cardhold_cvv_slots_live', 'gauge'],
  ['cardhold_key_age_seconds', 'gauge'],
  ['cardhold_control_failures_total', 'counter'],
  ['cardhold_audit_write_failures_total', 'counter'],
  ['cardhold_audit_records_total', 'counter'],
] as const;

/** A label value that is a route pattern: no ids, no query strings. */
const ROUTE = /^(unmatched|\/[A-Za-z0-9/_:.*-]*)$/;

describe('RoleMetrics', () => {
  test('a critical control failure is one error-level event and one counter increment', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (l: string) => lines.push(l) } });
    const metrics = new RoleMetrics('api', logger);
    const before = parse(await metrics.metrics());
    for (const control of ['audit_write', 'checkpoint_signing', 'key_provider'])
      assert.deepEqual(
        find(before, 'cardhold_control_failures_total', { control }).map((s) => s.value),
        [0],
        `${control} starts at 0 so an alert sees the first failure`,
      );

    const error = Object.assign(new Error('signing key unavailable'), { detail: 'raw-value-xyz' });
    metrics.controlFailure('checkpoint_signing', logger, error);
    metrics.auditWriteFailure(logger, new Error('insert failed'));
    metrics.auditRecorded('success');

    const after = parse(await metrics.metrics());
    const value = (name: string, labels: Record<string, string> = {}) => find(after, name, labels)[0]?.value;
    assert.equal(value('cardhold_control_failures_total', { control: 'checkpoint_signing' }), 1);
    assert.equal(value('cardhold_control_failures_total', { control: 'audit_write' }), 1);
    assert.equal(value('cardhold_control_failures_total', { control: 'key_provider' }), 0);
    assert.equal(value('cardhold_audit_write_failures_total'), 1);
    assert.equal(value('cardhold_audit_records_total', { outcome: 'success', role: 'api' }), 1);
    assert.equal(find(after, 'cardhold_tokens_created_total').length, 0, 'vault series only in the vault');

    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const failures = events.filter((e) => e['event'] === 'critical_control_failure');
    assert.deepEqual(
      failures.map((e) => [e['level'], e['control']]),
      [
        ['error', 'checkpoint_signing'],
        ['error', 'audit_write'],
      ],
    );
    const logged = failures[0]?.['err'] as { message?: string } | undefined;
    assert.equal(logged?.message, 'signing key unavailable');
    assert.ok(!lines.join('').includes('raw-value-xyz'), 'only the message of the error is logged');
  });

  test('request series are labelled with what the caller passes, and counted per label set', async () => {
    const metrics = new RoleMetrics('vault', createLogger({ level: 'silent' }));
    metrics.observeRequest('GET', '/v1/tokens/:id', 200, 0.004);
    metrics.observeRequest('GET', '/v1/tokens/:id', 200, 0.02);
    metrics.observeRequest('GET', '/v1/tokens/:id', 404, 0.001);
    const samples = parse(await metrics.metrics());
    const ok = { method: 'GET', route: '/v1/tokens/:id', status: '200' };
    assert.equal(find(samples, 'cardhold_http_requests_total', ok)[0]?.value, 2);
    assert.equal(find(samples, 'cardhold_http_request_duration_seconds_count', ok)[0]?.value, 2);
    assert.equal(
      find(samples, 'cardhold_http_request_duration_seconds_bucket', { ...ok, le: '0.005' })[0]?.value,
      1,
    );
    assert.equal(find(samples, 'cardhold_http_requests_total', { ...ok, status: '404' })[0]?.value, 1);
  });
});

for (const backend of backends()) {
  describe(`metrics endpoint (${backend})`, () => {
    let t: TestPlatform;
    let tokenId = '';
    let slotId = '';

    before(async () => {
      t = await startTestPlatform(backend, 'metrics', { roles: ['vault', 'api', 'acquirer'] });
      const created = await t.request<{ token: { id: string }; cvv_slot: { id: string } }>(
        'POST',
        `${t.vaultUrl}/v1/tokens`,
        { body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear, cvv: testCvvs.three } },
      );
      assert.equal(created.status, 201);
      tokenId = created.json.token.id;
      slotId = created.json.cvv_slot.id;
      assert.equal((await t.request('GET', `${t.vaultUrl}/v1/tokens/${tokenId}`)).status, 200);
      assert.equal((await t.request('GET', `${t.vaultUrl}/v1/cvv-slots/${slotId}`)).status, 200);
      // A miss on a real route and a URL that matches no route, both carrying ids.
      assert.equal(
        (await t.request('GET', `${t.vaultUrl}/v1/tokens/tok_0000000000000000000000`)).status,
        404,
      );
      assert.equal((await t.request('GET', `${t.vaultUrl}/v1/nothing/${tokenId}?q=${tokenId}`)).status, 404);
    });
    after(async () => {
      await t?.close();
    });

    const scrape = async (role: 'vault' | 'api' | 'acquirer') => {
      const url = t.platform.metricsUrls[role];
      assert.ok(url, `${role} has a metrics URL`);
      const response = await t.request('GET', url, { key: null });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      return { text: response.text, samples: parse(response.text) };
    };

    test('each role serves /metrics over HTTPS on its own port, apart from the API', async () => {
      const ports = new Set<string>();
      for (const role of ['vault', 'api', 'acquirer'] as const) {
        const api = new URL(t.platform.urls[role] ?? '');
        const metrics = new URL(t.platform.metricsUrls[role] ?? '');
        assert.equal(metrics.protocol, 'https:');
        assert.equal(metrics.pathname, '/metrics');
        assert.notEqual(metrics.port, api.port, `${role}: the metrics port is not the API port`);
        ports.add(api.port).add(metrics.port);
        const { samples } = await scrape(role);
        assert.ok(samples.length > 0 && samples.every((s) => s.labels['role'] === role), `${role} labels`);
        assert.ok(find(samples, 'cardhold_process_resident_memory_bytes').length > 0, 'default metrics');
      }
      assert.equal(ports.size, 6, 'six distinct ports');
      // The API port does not serve metrics, and the metrics port serves nothing else.
      assert.equal((await t.request('GET', `${t.vaultUrl}/metrics`, { key: null })).status, 404);
      const base = t.platform.metricsUrls.vault?.replace(/\/metrics$/, '');
      assert.equal((await t.request('GET', `${base}/`, { key: null })).status, 404);
      assert.equal((await t.request('GET', `${base}/v1/tokens`, { key: null })).status, 404);
      assert.equal((await t.request('POST', `${base}/metrics`, { key: null })).status, 404);
    });

    test('the vault exposes every named series, with values from real traffic', async () => {
      const { text, samples } = await scrape('vault');
      for (const [name, type] of namedSeries) assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'));

      const one = (name: string, labels: Record<string, string> = {}) => {
        const found = find(samples, name, labels);
        assert.equal(found.length, 1, `one ${name} ${JSON.stringify(labels)}`);
        return found[0]!.value;
      };
      assert.ok(one('cardhold_tokens_created_total') >= 1);
      assert.ok(one('cardhold_cvv_slots_live') >= 1);
      for (const purpose of ['pan', 'cvv', 'fingerprint']) {
        const age = one('cardhold_key_age_seconds', { purpose });
        assert.ok(age >= 0 && age < 3600, `${purpose} key age ${age}`);
      }
      for (const control of ['audit_write', 'checkpoint_signing', 'key_provider'])
        assert.equal(one('cardhold_control_failures_total', { control }), 0);
      assert.equal(one('cardhold_audit_write_failures_total'), 0);

      const read = { method: 'GET', route: '/v1/tokens/:id', status: '200' };
      assert.equal(one('cardhold_http_requests_total', read), 1);
      assert.equal(one('cardhold_http_request_duration_seconds_count', read), 1);
      assert.ok(one('cardhold_http_request_duration_seconds_sum', read) > 0);
      assert.equal(one('cardhold_http_requests_total', { ...read, status: '404' }), 1);
      assert.equal(
        one('cardhold_http_requests_total', { method: 'POST', route: '/v1/tokens', status: '201' }),
        1,
      );
      assert.equal(one('cardhold_http_requests_total', { route: '/v1/cvv-slots/:id', status: '200' }), 1);
      assert.ok(one('cardhold_http_requests_total', { route: 'unmatched', status: '404' }) >= 1);
    });

    test('no label carries a token id, a CVV slot id, a query string or card data', async () => {
      const { text, samples } = await scrape('vault');
      const routes = new Set(
        samples.flatMap((s) => (s.labels['route'] === undefined ? [] : [s.labels['route']])),
      );
      assert.ok(routes.size >= 4, `route labels seen: ${[...routes].join(' ')}`);
      for (const route of routes) assert.match(route, ROUTE);
      for (const value of [tokenId, slotId, t.merchantId, testCards.visa, '?q='])
        assert.ok(!text.includes(value), 'the exposition never contains an id or card data');
      assert.doesNotMatch(text, /\b(tok|cvv|mer|key)_[0-9A-Za-z]{16,}/, 'no id of any kind');
    });

    test('the api and acquirer have the shared series but not the vault ones', async () => {
      for (const role of ['api', 'acquirer'] as const) {
        const { text } = await scrape(role);
        assert.match(text, /^# TYPE cardhold_http_requests_total counter$/m);
        assert.match(text, /^# TYPE cardhold_control_failures_total counter$/m);
        assert.doesNotMatch(text, /cardhold_tokens_created_total|cardhold_cvv_slots_live|cardhold_key_age/);
      }
    });

    // Last: it leaves the key provider closed.
    test('an unavailable key provider makes the vault not ready and counts a key_provider failure', async () => {
      await t.platform.services.vault?.keys.provider.close();
      const ready = await t.request<{ checks: Record<string, string> }>('GET', `${t.vaultUrl}/readyz`, {
        key: null,
      });
      assert.equal(ready.status, 503);
      assert.equal(ready.json.checks['key_provider'], 'failing');
      assert.equal(ready.json.checks['database'], 'ok');
      const { samples } = await scrape('vault');
      const failures = find(samples, 'cardhold_control_failures_total', { control: 'key_provider' });
      assert.ok((failures[0]?.value ?? 0) >= 1, 'the failure is counted for an alert to watch');
    });
  });

  describe(`readiness (${backend})`, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(backend, 'readiness');
    });
    after(async () => {
      await t?.close();
    });

    test('/readyz turns 503 when the database stops, metrics still answer, and shutdown is clean', async () => {
      const readyz = () =>
        t.request<{ status: string; checks: Record<string, string> }>('GET', `${t.vaultUrl}/readyz`, {
          key: null,
        });
      const before = await readyz();
      assert.equal(before.status, 200);
      assert.deepEqual(before.json.checks, { database: 'ok', volatile_store: 'ok', key_provider: 'ok' });

      if (backend === 'embedded') {
        // The real thing: the embedded PostgreSQL server process stops.
        const embedded = t.platform.services.embeddedDatabase;
        assert.ok(embedded, 'the embedded backend exposes its PostgreSQL');
        await embedded.stop();
      } else {
        // The shared server must keep running for other tests: this database stops taking connections
        // from the runtime logins (PostgreSQL answers 53300), and the vault's open ones are terminated.
        const [row] = await t.adminSql<{ db: string }[]>`select current_database() as db`;
        await t.adminSql.unsafe(`alter database ${row?.db} connection limit 0`);
        await t.adminSql`
          select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and application_name = 'cardhold-vault'`;
      }

      const down = await readyz();
      assert.equal(down.status, 503);
      assert.equal(down.json.status, 'not_ready');
      assert.equal(down.json.checks['database'], 'failing');
      assert.equal(down.json.checks['volatile_store'], 'ok');
      assert.equal(down.json.checks['key_provider'], 'ok');
      // Card data is not served either (503, not a 500), and the API server itself stays up.
      const read = await t.request<{ code: string }>('GET', `${t.vaultUrl}/v1/tokens?limit=1`);
      assert.equal(read.status, 503);
      assert.equal(read.json.code, 'storage_unavailable');
      assert.equal((await t.request('GET', `${t.vaultUrl}/healthz`, { key: null })).status, 200);

      // A scrape still answers; the series read from the database are left out rather than stale.
      const scrape = await t.request('GET', t.platform.metricsUrls.vault ?? '', { key: null });
      assert.equal(scrape.status, 200);
      assert.match(scrape.text, /^cardhold_http_requests_total\{.*route="\/readyz",status="503"/m);
      assert.doesNotMatch(scrape.text, /^cardhold_key_age_seconds\{/m);

      const started = Date.now();
      await t.platform.close();
      assert.ok(Date.now() - started < 15_000, 'shutdown does not hang on the dead database');
      await assert.rejects(t.request('GET', `${t.vaultUrl}/healthz`, { key: null }), 'the vault has stopped');
      await assert.rejects(
        t.request('GET', t.platform.metricsUrls.vault ?? '', { key: null }),
        'the metrics server has stopped',
      );
    });
  });
}
