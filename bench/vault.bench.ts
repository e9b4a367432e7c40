/**
 * Vault throughput/latency benchmark: cardhold's tokenize and token read against bare fastify routes that
 * do only the database work (one INSERT / one SELECT of a vault.tokens-shaped row), over the same
 * loopback HTTPS, same certificate, same pool size and same logger level.
 *
 *   npm run bench                      # external PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379
 *   BENCH_SECONDS=5 npm run bench      # shorter runs
 *   BENCH_BACKEND=embedded npm run bench
 *
 * Environment:
 *   BENCH_SECONDS         measured seconds per run (default 10)
 *   BENCH_WARMUP_SECONDS  warm-up seconds before each measured run (default 3)
 *   BENCH_CONNECTIONS     concurrent connections (default 50)
 *   BENCH_ROUNDS          bare/cardhold pairs per comparison; the better run of each side is kept (default 2)
 *   BENCH_WORKERS         autocannon worker threads; 0 runs the load generator on the main thread (default 1)
 *   BENCH_ONLY            'tokenize' or 'read' to run one comparison only (e.g. when profiling)
 *   BENCH_BACKEND         'external' (default) or 'embedded'
 *   BENCH_DATABASE_URL    admin URL of the external PostgreSQL (default postgres://postgres@127.0.0.1:5432/postgres)
 *   BENCH_REDIS_URL       Redis for the external backend (default redis://127.0.0.1:6379)
 *
 * Only the Stripe test card below is ever sent.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import autocannon, { type Result } from 'autocannon';
import Fastify from 'fastify';
import pino from 'pino';
import postgres from 'postgres';
import { loadConfig } from '../src/config/config.ts';
import { developmentLogins, type RunningPlatform, startPlatform } from '../src/platform/platform.ts';
import { createLogger, type Logger } from '../src/shared/logger.ts';
import type { Sql } from '../src/storage/database.ts';
import { type Credentials, connectAs, type DatabaseTarget } from '../src/storage/database-target.ts';
import { type Classifier, cpuPerRequest, cpuSnapshot, formatCpu, serviceOf } from './cpu-time.ts';

const TEST_PAN = '4242424242424242';
const TOKENIZE_BODY = JSON.stringify({ pan: TEST_PAN, exp_month: 12, exp_year: 2030 });
/** The columns TokenService returns for a token view (insert ... returning, and the read). */
const VIEW_COLUMNS = 'id, alias, brand, bin, last4, exp_month, exp_year, fingerprint, created_at, expires_at';
/** The embedded server's administrative login (src/storage/embedded-postgres.ts). */
const EMBEDDED_ADMIN_USER = 'cardhold_admin';

function intFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}`);
  return n;
}

const SECONDS = intFromEnv('BENCH_SECONDS', 10, 1);
const WARMUP_SECONDS = intFromEnv('BENCH_WARMUP_SECONDS', 3, 0);
const CONNECTIONS = intFromEnv('BENCH_CONNECTIONS', 50, 1);
const ROUNDS = intFromEnv('BENCH_ROUNDS', 2, 1);
const WORKERS = intFromEnv('BENCH_WORKERS', 1, 0);
const ONLY = process.env['BENCH_ONLY'] ?? '';
const BACKEND = process.env['BENCH_BACKEND'] || 'external';
const ADMIN_URL = process.env['BENCH_DATABASE_URL'] || 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env['BENCH_REDIS_URL'] || 'redis://127.0.0.1:6379';
if (BACKEND !== 'external' && BACKEND !== 'embedded')
  throw new Error('BENCH_BACKEND must be external or embedded');
if (ONLY !== '' && ONLY !== 'tokenize' && ONLY !== 'read')
  throw new Error('BENCH_ONLY must be tokenize or read');

const TARGETS = { throughput: 0.9, p99: 1.2 };

// ---------------------------------------------------------------------------------------------------------
// Abort handling: Ctrl-C, SIGTERM or the time budget stop the current load run and go straight to cleanup.

let abortReason: string | undefined;
let rejectAborted: (error: Error) => void = () => undefined;
const aborted = new Promise<never>((_, reject) => {
  rejectAborted = reject;
});
aborted.catch(() => undefined);
let currentRun: { stop(): void } | undefined;

function abort(reason: string): void {
  if (abortReason) return;
  abortReason = reason;
  process.stderr.write(`bench: aborting (${reason}), cleaning up\n`);
  try {
    currentRun?.stop();
  } catch {
    // the run may already be finishing
  }
  rejectAborted(new Error(`aborted: ${reason}`));
  // If cleanup itself hangs, do not hang with it.
  setTimeout(() => process.exit(2), 30_000).unref();
}

function checkAborted(): void {
  if (abortReason) throw new Error(`aborted: ${abortReason}`);
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers.

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

/** A single HTTPS request that does verify the server certificate against cardhold's CA. */
function request(
  url: string,
  ca: Buffer,
  init: { method: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: init.method, headers: init.headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${init.method} ${url}`)));
    req.end(init.body);
  });
}

async function expectStatus(
  what: string,
  response: Promise<{ status: number; body: string }>,
  status: number,
): Promise<Record<string, unknown>> {
  const res = await response;
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status}: ${res.body}`);
  return JSON.parse(res.body) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------------
// The bare baseline: one fastify 5 app, same TLS material and settings cardhold uses, no auth, no schema,
// no hooks; random bytes stand in for the cryptography.

interface BareShape {
  merchantId: string;
  ciphertextBytes: number;
  wrappedDekBytes: number;
  kekVersion: number;
}

interface ViewRow {
  id: string;
  alias: string | null;
  brand: string;
  bin: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  fingerprint: Buffer;
  created_at: Date;
  expires_at: Date | null;
}

const bareView = (row: ViewRow) => ({
  id: row.id,
  object: 'token',
  alias: row.alias,
  brand: row.brand,
  bin: row.bin,
  last4: row.last4,
  exp_month: row.exp_month,
  exp_year: row.exp_year,
  fingerprint: `fp_${row.fingerprint.toString('base64url')}`,
  created_at: row.created_at.toISOString(),
  expires_at: row.expires_at ? row.expires_at.toISOString() : null,
});

async function startBare(options: {
  key: Buffer;
  cert: Buffer;
  sql: Sql;
  logger: Logger;
  shape: BareShape;
}): Promise<{ close: () => Promise<void>; url: string }> {
  const { sql, shape } = options;
  // Tokenizing one card always yields the same fingerprint; keep that (a fixed random value) so the
  // fingerprint index sees the same key distribution as cardhold's.
  const fingerprint = randomBytes(32);
  const app = Fastify({
    loggerInstance: options.logger.child({ role: 'bare' }),
    https: { key: options.key, cert: options.cert, minVersion: 'TLSv1.2' },
  });

  app.post('/insert', async (request, reply) => {
    const body = request.body as { pan: string; exp_month: number; exp_year: number };
    const id = `tok_${randomBytes(16).toString('base64url')}`;
    const rows = await sql<ViewRow[]>`
      insert into bench.tokens (id, merchant_id, alias, fingerprint, ciphertext, wrapped_dek, kek_version,
        aad_version, fingerprint_version, brand, bin, last4, pan_length, exp_month, exp_year, expires_at)
      values (${id}, ${shape.merchantId}, ${null}, ${fingerprint}, ${randomBytes(shape.ciphertextBytes)},
        ${randomBytes(shape.wrappedDekBytes)}, ${shape.kekVersion}, ${shape.kekVersion}, ${1}, ${'visa'}, ${body.pan.slice(0, 8)},
        ${body.pan.slice(-4)}, ${body.pan.length}, ${body.exp_month}, ${body.exp_year}, ${null})
      returning ${sql.unsafe(VIEW_COLUMNS)}`;
    return reply.code(201).send({ token: bareView(rows[0] as ViewRow), deduplicated: false, cvv_slot: null });
  });

  app.get('/select/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    const rows = await sql<ViewRow[]>`select ${sql.unsafe(VIEW_COLUMNS)} from bench.tokens where id = ${id}`;
    const row = rows[0];
    if (!row) return reply.code(404).send({ code: 'token_not_found' });
    return bareView(row);
  });

  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address !== 'object') throw new Error('bare server has no address');
  return { close: () => app.close(), url: `https://127.0.0.1:${address.port}` };
}

// ---------------------------------------------------------------------------------------------------------
// Load runs.

interface Scenario {
  label: string;
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  expectStatus: number;
}

interface RunResult {
  scenario: string;
  round: number;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  bad: number;
}

async function load(scenario: Scenario, seconds: number, ca: Buffer): Promise<Result> {
  checkAborted();
  const instance = autocannon({
    url: scenario.url,
    method: scenario.method,
    headers: scenario.headers,
    ...(scenario.body === undefined ? {} : { body: scenario.body }),
    connections: CONNECTIONS,
    duration: seconds,
    ...(WORKERS > 0 ? { workers: WORKERS } : {}),
    // autocannon always sets rejectUnauthorized: false; the CA is passed for completeness, and the
    // servers' certificates are verified once, against this CA, before any load run (see main).
    tlsOptions: { ca },
  });
  currentRun = instance;
  try {
    return await Promise.race([Promise.resolve(instance), aborted]);
  } finally {
    currentRun = undefined;
  }
}

/** This process (both servers and the load generator) against PostgreSQL and Redis. */
const classify: Classifier = (commandLine, pid) => {
  if (pid === process.pid) return 'bench process';
  return serviceOf(commandLine);
};

async function measure(scenario: Scenario, round: number, ca: Buffer): Promise<RunResult> {
  if (WARMUP_SECONDS > 0) await load(scenario, WARMUP_SECONDS, ca);
  const before = cpuSnapshot(classify);
  const result = await load(scenario, SECONDS, ca);
  const cpu = formatCpu(cpuPerRequest(before, cpuSnapshot(classify), result.requests.total));
  const good = result.statusCodeStats[String(scenario.expectStatus)]?.count ?? 0;
  const total = Object.values(result.statusCodeStats).reduce((sum, s) => sum + s.count, 0);
  const bad = total - good + result.errors + result.timeouts;
  const run: RunResult = {
    scenario: scenario.label,
    round,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: total,
    bad,
  };
  log(
    `${scenario.label} #${round}: ${run.rps.toFixed(0)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms; ${cpu}` +
      (bad > 0
        ? ` (${bad} bad: status ${JSON.stringify(result.statusCodeStats)}, errors ${result.errors}, timeouts ${result.timeouts})`
        : ''),
  );
  return run;
}

/** The better run of a side: the one with the higher throughput (its own latencies are reported). */
const best = (runs: RunResult[]) => runs.reduce((a, b) => (b.rps > a.rps ? b : a));

interface Comparison {
  name: string;
  cardhold: RunResult;
  bare: RunResult;
}

async function compare(name: string, bare: Scenario, cardhold: Scenario, ca: Buffer, all: RunResult[]) {
  const bareRuns: RunResult[] = [];
  const cardholdRuns: RunResult[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    bareRuns.push(await measure(bare, round, ca));
    cardholdRuns.push(await measure(cardhold, round, ca));
  }
  all.push(...bareRuns, ...cardholdRuns);
  return { name, cardhold: best(cardholdRuns), bare: best(bareRuns) } satisfies Comparison;
}

// ---------------------------------------------------------------------------------------------------------
// Report.

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const ratio = (a: number, b: number) => (b === 0 ? Number.NaN : a / b);

function report(comparisons: Comparison[], all: RunResult[]): string {
  const lines: string[] = [];
  lines.push(
    `Node ${process.version}, ${cpus().length} CPUs, backend ${BACKEND}, ${CONNECTIONS} connections, ` +
      `${SECONDS} s per run after ${WARMUP_SECONDS} s warm-up, ${ROUNDS} alternating rounds (better run kept), ` +
      `autocannon workers: ${WORKERS}`,
    '',
    '| scenario | requests/s | p50 (ms) | p99 (ms) |',
    '| --- | ---: | ---: | ---: |',
  );
  for (const c of comparisons) {
    for (const r of [c.cardhold, c.bare]) {
      lines.push(`| ${r.scenario} | ${fmt(r.rps)} | ${r.p50} | ${r.p99} |`);
    }
  }
  lines.push(
    '',
    `| comparison | throughput ratio (target ≥ ${TARGETS.throughput}) | p99 ratio (target ≤ ${TARGETS.p99}) | targets met |`,
    '| --- | ---: | ---: | --- |',
  );
  for (const c of comparisons) {
    const tput = ratio(c.cardhold.rps, c.bare.rps);
    const p99 = ratio(c.cardhold.p99, c.bare.p99);
    const met = [
      tput >= TARGETS.throughput ? 'throughput yes' : 'throughput NO',
      p99 <= TARGETS.p99 ? 'p99 yes' : 'p99 NO',
    ].join(', ');
    lines.push(`| ${c.name} | ${tput.toFixed(2)} | ${p99.toFixed(2)} | ${met} |`);
  }
  lines.push('', '<details><summary>All runs</summary>', '');
  lines.push('| run | round | requests/s | p50 (ms) | p99 (ms) | responses | unexpected |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of all) {
    lines.push(
      `| ${r.scenario} | ${r.round} | ${fmt(r.rps)} | ${r.p50} | ${r.p99} | ${fmt(r.requests)} | ${r.bad} |`,
    );
  }
  lines.push('', '</details>');
  if (all.some((r) => r.bad > 0))
    lines.push('', '**Warning:** some runs had unexpected statuses or errors; see stderr.');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const budgetMs =
    (ONLY ? 1 : 2) * 2 * ROUNDS * (SECONDS + WARMUP_SECONDS + 2) * 1000 +
    (BACKEND === 'embedded' ? 120 : 60) * 1000;
  setTimeout(() => abort('time budget exceeded'), budgetMs).unref();
  // The benchmark's own handlers replace any others, so that a signal runs the cleanup below.
  // (tsx's own signal relay hides itself from process.listeners and stays.) Repeated signals, e.g. from
  // both the terminal and npm, only abort once.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    for (const listener of process.listeners(signal)) process.off(signal, listener);
    process.on(signal, () => abort(signal));
  }

  const cleanups: Array<{ name: string; run: () => Promise<unknown> }> = [];
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cardhold-bench-'));
  cleanups.push({ name: 'remove data dir', run: () => rm(dataDir, { recursive: true, force: true }) });

  try {
    const database = `bench_${randomBytes(4).toString('hex')}`;
    if (BACKEND === 'external') {
      const maintenance = postgres(ADMIN_URL, { max: 1, onnotice: () => undefined });
      try {
        await maintenance.unsafe(`create database ${database}`);
      } finally {
        await maintenance.end({ timeout: 5 });
      }
      cleanups.push({
        name: 'drop database',
        run: async () => {
          const sql = postgres(ADMIN_URL, { max: 1, onnotice: () => undefined });
          try {
            await sql.unsafe(`drop database if exists ${database} with (force)`);
            // The platform minted one login per role for this database; they are cluster-wide.
            for (const login of developmentLogins(database)) await sql.unsafe(`drop role if exists ${login}`);
          } finally {
            await sql.end({ timeout: 5 });
          }
        },
      });
      log(`created database ${database}`);
    }

    const env: Record<string, string | undefined> = {
      ...process.env,
      CARDHOLD_DATA_DIR: dataDir,
      CARDHOLD_VAULT_PORT: '0',
      CARDHOLD_API_PORT: '0',
      CARDHOLD_ACQUIRER_PORT: '0',
      CARDHOLD_VAULT_METRICS_PORT: '0',
      CARDHOLD_API_METRICS_PORT: '0',
      CARDHOLD_ACQUIRER_METRICS_PORT: '0',
      CARDHOLD_LOG_LEVEL: 'warn',
      // Limits stay on (their cost is part of the measurement) but high enough never to trigger.
      CARDHOLD_RATE_LIMIT_TOKENIZE_PER_MINUTE:
        process.env['CARDHOLD_RATE_LIMIT_TOKENIZE_PER_MINUTE'] ?? '100000000',
      CARDHOLD_DATABASE_URL: undefined,
      CARDHOLD_REDIS_URL: undefined,
    };
    if (BACKEND === 'external') {
      const url = new URL(ADMIN_URL);
      url.pathname = `/${database}`;
      env['CARDHOLD_DATABASE_URL'] = url.toString();
      env['CARDHOLD_REDIS_URL'] = REDIS_URL;
    }
    const config = loadConfig(env);
    // Warnings go to stderr so stdout carries only the report; cardhold and the bare app share this logger.
    const logger = createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: false }) });

    log(`starting cardhold (vault + api, ${BACKEND} PostgreSQL)`);
    const platform: RunningPlatform = await startPlatform({
      config,
      roles: ['vault', 'api'],
      logger,
      demo: true,
    });
    cleanups.push({ name: 'close platform', run: () => platform.close() });
    checkAborted();

    const vaultUrl = platform.urls.vault;
    const target: DatabaseTarget | undefined = platform.services.databaseTarget;
    if (!vaultUrl || !target || !platform.demo)
      throw new Error('platform did not start the vault and demo merchant');
    const secretKey = platform.demo.apiKey.secret.expose();
    const merchantId = platform.demo.merchant.id;
    const ca = await readFile(platform.caFile);

    let adminCredentials: Credentials | undefined;
    if (target.kind === 'socket') {
      const password = (await readFile(path.join(dataDir, 'postgres-admin.secret'), 'utf8')).trim();
      adminCredentials = { user: EMBEDDED_ADMIN_USER, password };
    }
    const admin = connectAs(target, adminCredentials, {
      applicationName: 'cardhold-bench-admin',
      max: 1,
      logger,
    });
    cleanups.push({ name: 'close admin pool', run: () => admin.end({ timeout: 5 }) });

    // A token to read (and to learn the real row shape), created through the API with the CA verified.
    const auth = { authorization: `Bearer ${secretKey}` };
    const created = await expectStatus(
      'seed tokenize',
      request(`${vaultUrl}/v1/tokens`, ca, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: TOKENIZE_BODY,
      }),
      201,
    );
    const tokenId = (created['token'] as { id: string }).id;
    await expectStatus(
      'seed read',
      request(`${vaultUrl}/v1/tokens/${tokenId}`, ca, { method: 'GET', headers: auth }),
      200,
    );
    const [shape] = await admin<{ c: number; w: number; k: number }[]>`
      select octet_length(ciphertext) as c, octet_length(wrapped_dek) as w, kek_version as k
      from vault.tokens where id = ${tokenId}`;
    if (!shape) throw new Error('seed token not found in vault.tokens');

    // The baseline table: same columns, constraints and indexes as vault.tokens, in a scratch schema.
    await admin.unsafe('create schema if not exists bench');
    await admin.unsafe('create table bench.tokens (like vault.tokens including all)');

    const bareSql = connectAs(target, adminCredentials, {
      applicationName: 'cardhold-bench-bare',
      max: config.databasePoolSize,
      logger,
    });
    cleanups.push({ name: 'close bare pool', run: () => bareSql.end({ timeout: 5 }) });
    const vaultDir = path.join(dataDir, 'tls');
    const bare = await startBare({
      key: await readFile(path.join(vaultDir, 'vault.key')),
      cert: await readFile(path.join(vaultDir, 'vault.crt')),
      sql: bareSql,
      logger,
      shape: { merchantId, ciphertextBytes: shape.c, wrappedDekBytes: shape.w, kekVersion: shape.k },
    });
    cleanups.push({ name: 'close bare server', run: () => bare.close() });

    const bareCreated = await expectStatus(
      'seed bare insert',
      request(`${bare.url}/insert`, ca, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: TOKENIZE_BODY,
      }),
      201,
    );
    const bareId = (bareCreated['token'] as { id: string }).id;
    await expectStatus(
      'seed bare select',
      request(`${bare.url}/select/${bareId}`, ca, { method: 'GET' }),
      200,
    );
    log(`cardhold vault at ${vaultUrl}, bare baseline at ${bare.url}; certificates verified against the CA`);

    const json = { 'content-type': 'application/json' };
    const comparisons: Comparison[] = [];
    const all: RunResult[] = [];
    if (ONLY !== 'read') {
      comparisons.push(
        await compare(
          'tokenize / bare insert',
          {
            label: 'bare insert (POST, one INSERT)',
            url: `${bare.url}/insert`,
            method: 'POST',
            headers: json,
            body: TOKENIZE_BODY,
            expectStatus: 201,
          },
          {
            label: 'cardhold tokenize (POST /v1/tokens)',
            url: `${vaultUrl}/v1/tokens`,
            method: 'POST',
            headers: { ...json, ...auth },
            body: TOKENIZE_BODY,
            expectStatus: 201,
          },
          ca,
          all,
        ),
      );
    }
    if (ONLY !== 'tokenize') {
      comparisons.push(
        await compare(
          'read / bare select',
          {
            label: 'bare select (GET, one SELECT)',
            url: `${bare.url}/select/${bareId}`,
            method: 'GET',
            headers: {},
            expectStatus: 200,
          },
          {
            label: 'cardhold read (GET /v1/tokens/:id)',
            url: `${vaultUrl}/v1/tokens/${tokenId}`,
            method: 'GET',
            headers: auth,
            expectStatus: 200,
          },
          ca,
          all,
        ),
      );
    }

    process.stdout.write(`${report(comparisons, all)}\n`);
    return all.some((r) => r.bad > 0) ? 1 : 0;
  } catch (error) {
    process.stderr.write(
      `bench: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  } finally {
    for (const step of cleanups.reverse()) {
      if (abortReason) log(`cleanup: ${step.name}`);
      await step.run().catch((error: unknown) => log(`cleanup step "${step.name}" failed: ${String(error)}`));
    }
  }
}

// Explicit exit: a library handle left open must not keep the benchmark alive. Pipes and files are written
// synchronously on Linux, so the report is not cut short.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${String(error)}\n`);
    process.exit(1);
  },
);
