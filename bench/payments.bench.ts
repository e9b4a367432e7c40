/**
 * End-to-end authorize (api → vault forward proxy → test acquirer, each hop over mTLS) beside tokenize,
 * in the same run on the same platform, loaded in alternation. Targets (issue 5): authorize throughput
 * at least 0.4× tokenize, authorize p99 under 60 ms, at 50 connections.
 *
 *   npm run bench:payments
 *   BENCH_SECONDS=5 BENCH_ROUNDS=2 npm run bench:payments
 *
 * BENCH_TOPOLOGY=split (the default) runs each role in its own process, as production does (and as
 * two cores can then share); BENCH_TOPOLOGY=single runs all three in one process (`cardhold start`).
 * BENCH_ONLY=authorize|tokenize loads one side only; BENCH_PROFILE_DIR=<dir> makes each role (split)
 * write a V8 CPU profile there. Every run also prints the CPU time per request of each process group.
 * BENCH_FLOOR=1 (split) also loads three bare HTTPS hops chained like an authorization (bench/hop-server.ts:
 * fastify, mTLS on the inner hops, no database or logic), and one bare hop, beside the same tokenize:
 * what the path's shape costs before any of cardhold's work.
 *
 * Each authorize creates a payment and confirms it in one request (confirm=true, manual capture) with a
 * token of the Stripe test card, without a CVV slot: a slot is destroyed by its approval, so a load test
 * would need one per request. Only the Stripe test card is sent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import autocannon, { type Result } from 'autocannon';
import postgres from 'postgres';
import { Agent, fetch } from 'undici';
import { developmentLogins } from '../src/platform/platform.ts';
import { backends, startTestPlatform } from '../test/harness.ts';
import { type Classifier, cpuPerRequest, cpuSnapshot, formatCpu, serviceOf } from './cpu-time.ts';

const SECONDS = Number(process.env['BENCH_SECONDS'] || 10);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] || 2);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] || 50);
const PAN = '4242424242424242';
const TOPOLOGY = process.env['BENCH_TOPOLOGY'] || 'split';
const FLOOR = process.env['BENCH_FLOOR'] === '1';
/** `authorize` or `tokenize` loads only that side (when profiling); the ratio then is not reported. */
const ONLY = process.env['BENCH_ONLY'] || '';
if (ONLY !== '' && ONLY !== 'authorize' && ONLY !== 'tokenize')
  throw new Error('BENCH_ONLY must be authorize or tokenize');
if (TOPOLOGY !== 'split' && TOPOLOGY !== 'single') throw new Error('BENCH_TOPOLOGY must be split or single');
if (FLOOR && TOPOLOGY !== 'split') throw new Error('BENCH_FLOOR needs BENCH_TOPOLOGY=split');

/** What a load run needs: where the roles listen, a merchant's secret key and the CA to trust. */
interface Target {
  vaultUrl: string;
  apiUrl: string;
  secretKey: string;
  ca: Buffer;
  /** The local CA's directory (split only): the bare hops of BENCH_FLOOR use its certificates. */
  tlsDir?: string;
  close(): Promise<void>;
}

type LoadName = 'tokenize' | 'authorize' | 'floor, 3 hops' | 'floor, 1 hop';

interface Load {
  name: LoadName;
  url: string;
  body: string;
  ok: number;
}

/** Which process is which: this one (the load generator, and all roles in `single`), the roles, PostgreSQL. */
const classify: Classifier = (commandLine, pid) => {
  if (pid === process.pid) return TOPOLOGY === 'single' ? 'bench+roles' : 'load generator';
  const role = /cardhold\.js (vault|api|acquirer)\b/.exec(commandLine)?.[1];
  if (role) return role;
  const hop = /hop-server\.ts \d+ \S+ (\w+)/.exec(commandLine)?.[1];
  if (hop) return `hop ${hop}`;
  return serviceOf(commandLine);
};

async function run(t: Target, load: Load, seconds: number): Promise<Result & { cpu: string }> {
  const before = cpuSnapshot(classify);
  const result = await autocannon({
    url: load.url,
    method: 'POST',
    headers: { authorization: `Bearer ${t.secretKey}`, 'content-type': 'application/json' },
    body: load.body,
    connections: CONNECTIONS,
    duration: seconds,
    tlsOptions: { ca: t.ca },
  });
  const good = result.statusCodeStats[String(load.ok)]?.count ?? 0;
  const total = Object.values(result.statusCodeStats).reduce((sum, s) => sum + s.count, 0);
  if (good !== total || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${load.name}: bad answers ${JSON.stringify(result.statusCodeStats)}, errors ${result.errors}`,
    );
  }
  return { ...result, cpu: formatCpu(cpuPerRequest(before, cpuSnapshot(classify), good)) };
}

const BENCH_ENV = {
  CARDHOLD_LOG_LEVEL: 'warn',
  CARDHOLD_AUDIT_STREAM: 'none',
  CARDHOLD_RATE_LIMIT_TOKENIZE_PER_MINUTE: '0',
};

/** All three roles in this process, through the test harness. */
async function single(backend: 'embedded' | 'external'): Promise<Target> {
  const t = await startTestPlatform(backend, 'bench-payments', {
    roles: ['vault', 'api', 'acquirer'],
    env: BENCH_ENV,
  });
  return {
    vaultUrl: t.vaultUrl,
    apiUrl: t.apiUrl,
    secretKey: t.secretKey,
    ca: await readFile(t.platform.caFile),
    close: () => t.close(),
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Each role in its own `cardhold` process, on the external PostgreSQL and Redis, as in production. */
async function split(): Promise<Target> {
  const baseUrl = process.env['CARDHOLD_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env['CARDHOLD_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  const database = `cardhold_bench_${randomBytes(4).toString('hex')}`;
  const root = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await root.unsafe(`create database ${database}`);
  const databaseUrl = new URL(baseUrl);
  databaseUrl.pathname = `/${database}`;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cardhold-bench-'));
  const [vaultPort, apiPort, acquirerPort] = [await freePort(), await freePort(), await freePort()];
  const urls = {
    vault: `https://127.0.0.1:${vaultPort}`,
    api: `https://127.0.0.1:${apiPort}`,
    acquirer: `https://127.0.0.1:${acquirerPort}`,
  };
  const env = {
    ...process.env,
    ...BENCH_ENV,
    CARDHOLD_DATA_DIR: dataDir,
    CARDHOLD_DATABASE_URL: databaseUrl.toString(),
    CARDHOLD_REDIS_URL: redisUrl,
    CARDHOLD_VAULT_PORT: String(vaultPort),
    CARDHOLD_API_PORT: String(apiPort),
    CARDHOLD_ACQUIRER_PORT: String(acquirerPort),
    CARDHOLD_VAULT_METRICS_PORT: '0',
    CARDHOLD_API_METRICS_PORT: '0',
    CARDHOLD_ACQUIRER_METRICS_PORT: '0',
    CARDHOLD_FORWARD_ALLOWLIST: urls.acquirer,
    CARDHOLD_VAULT_URL: urls.vault,
    CARDHOLD_CONNECTORS: JSON.stringify([{ name: 'acquirer', type: 'test-acquirer', url: urls.acquirer }]),
  };
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of children.reverse()) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    await rm(dataDir, { recursive: true, force: true });
    await root.unsafe(`drop database if exists ${database} with (force)`);
    for (const login of developmentLogins(database)) await root.unsafe(`drop role if exists ${login}`);
    await root.end();
  };
  try {
    // One after another: the first creates the local CA and keys, and migrates, for the others.
    for (const role of ['vault', 'acquirer', 'api'] as const) {
      // BENCH_PROFILE_DIR: each role writes a V8 CPU profile there when it stops.
      const profile = process.env['BENCH_PROFILE_DIR']
        ? [
            '--cpu-prof',
            `--cpu-prof-dir=${process.env['BENCH_PROFILE_DIR']}`,
            `--cpu-prof-name=${role}.cpuprofile`,
          ]
        : [];
      const child = spawn(process.execPath, [...profile, 'bin/cardhold.js', role], {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('running')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`cardhold ${role} exited with ${code}`)));
      });
    }
    const ca = await readFile(path.join(dataDir, 'tls', 'ca.crt'));
    const admin = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    const dispatcher = new Agent({ connect: { ca } });
    const made = await fetch(`${urls.api}/v1/merchants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Bench shop' }),
      dispatcher,
    });
    const merchant = (await made.json()) as { api_key: { secret: string } };
    await dispatcher.close();
    return {
      vaultUrl: urls.vault,
      apiUrl: urls.api,
      secretKey: merchant.api_key.secret,
      ca,
      tlsDir: path.join(dataDir, 'tls'),
      close: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Bare hops (bench/hop-server.ts) chained like an authorization, and one on its own; each its own process. */
async function floorHops(
  tlsDir: string,
): Promise<{ threeHops: string; oneHop: string; close(): Promise<void> }> {
  const children: ChildProcess[] = [];
  const start = async (name: string, mode: 'mtls' | 'open', next?: string) => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      ['bench/hop-server.ts', String(port), tlsDir, name, mode, ...(next ? [next] : [])],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`hop-server ${name} exited with ${code}`)));
    });
    return `https://127.0.0.1:${port}/hop`;
  };
  const close = async () => {
    for (const child of children) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  };
  try {
    const last = await start('acquirer', 'mtls');
    const middle = await start('vault', 'mtls', last);
    const threeHops = await start('api', 'open', middle);
    const oneHop = await start('api', 'open');
    return { threeHops, oneHop, close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function main(): Promise<void> {
  const backend = backends().at(-1) ?? 'embedded';
  const t = TOPOLOGY === 'split' ? await split() : await single(backend);
  let floor: Awaited<ReturnType<typeof floorHops>> | undefined;
  try {
    const dispatcher = new Agent({ connect: { ca: t.ca } });
    const tokenized = (await (
      await fetch(`${t.vaultUrl}/v1/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.secretKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ pan: PAN, exp_month: 12, exp_year: 2030 }),
        dispatcher,
      })
    ).json()) as { token: { id: string } };
    await dispatcher.close();
    const loads: Load[] = [
      {
        name: 'tokenize',
        url: `${t.vaultUrl}/v1/tokens`,
        body: JSON.stringify({ pan: PAN, exp_month: 12, exp_year: 2030 }),
        ok: 201,
      },
      {
        name: 'authorize',
        url: `${t.apiUrl}/v1/payment_intents`,
        body: JSON.stringify({
          amount: 1999,
          currency: 'usd',
          capture_method: 'manual',
          confirm: true,
          payment_method: tokenized.token.id,
        }),
        ok: 200,
      },
    ];
    floor = FLOOR && t.tlsDir ? await floorHops(t.tlsDir) : undefined;
    if (floor) {
      const body = loads[1]?.body ?? '{}';
      loads.push({ name: 'floor, 3 hops', url: floor.threeHops, body, ok: 200 });
      loads.push({ name: 'floor, 1 hop', url: floor.oneHop, body, ok: 200 });
    }
    const wanted = loads.filter((load) => ONLY === '' || load.name === ONLY);
    for (const load of wanted) await run(t, load, 3);
    const best: Record<LoadName, { rps: number; p50: number; p99: number }> = {
      tokenize: { rps: 0, p50: 0, p99: 0 },
      authorize: { rps: 0, p50: 0, p99: 0 },
      'floor, 3 hops': { rps: 0, p50: 0, p99: 0 },
      'floor, 1 hop': { rps: 0, p50: 0, p99: 0 },
    };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const load of round % 2 ? wanted : [...wanted].reverse()) {
        const r = await run(t, load, SECONDS);
        process.stdout.write(
          `round ${round} ${load.name}: ${r.requests.average.toFixed(0)}/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms; ${r.cpu}\n`,
        );
        if (r.requests.average > best[load.name].rps)
          best[load.name] = { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
      }
    }
    const ratio = best.authorize.rps / best.tokenize.rps;
    process.stdout.write(
      `topology ${TOPOLOGY}, backend ${TOPOLOGY === 'split' ? 'external' : backend}, ${CONNECTIONS} connections, ${SECONDS}s x ${ROUNDS} rounds, ${cpus().length} cores, node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}\n` +
        `best tokenize ${best.tokenize.rps.toFixed(0)}/s (p99 ${best.tokenize.p99} ms); ` +
        `best authorize ${best.authorize.rps.toFixed(0)}/s (p50 ${best.authorize.p50} ms, p99 ${best.authorize.p99} ms)\n` +
        `authorize/tokenize ${ratio.toFixed(2)} (target >= 0.4), authorize p99 ${best.authorize.p99} ms (target < 60)\n`,
    );
    if (floor) {
      const three = best['floor, 3 hops'];
      const one = best['floor, 1 hop'];
      process.stdout.write(
        `floor: 3 bare hops ${three.rps.toFixed(0)}/s (p99 ${three.p99} ms), ${(three.rps / best.tokenize.rps).toFixed(2)}x tokenize; ` +
          `1 bare hop ${one.rps.toFixed(0)}/s (p99 ${one.p99} ms), ${(one.rps / best.tokenize.rps).toFixed(2)}x tokenize\n`,
      );
    }
  } finally {
    await floor?.close();
    await t.close();
  }
}

await main();
