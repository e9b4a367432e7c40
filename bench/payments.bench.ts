/**
 * End-to-end authorize (api → vault forward proxy → test acquirer, each hop over mTLS) beside tokenize,
 * in the same run on the same platform, loaded in alternation. Targets (issue 5): authorize throughput
 * at least 0.4× tokenize, authorize p99 under 60 ms, at 50 connections.
 *
 *   npm run bench:payments
 *   BENCH_SECONDS=5 BENCH_ROUNDS=2 npm run bench:payments
 *
 * Each authorize creates a payment and confirms it in one request (confirm=true, manual capture) with a
 * token of the Stripe test card, without a CVV slot: a slot is destroyed by its approval, so a load test
 * would need one per request. Only the Stripe test card is sent.
 */
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import autocannon, { type Result } from 'autocannon';
import { backends, startTestPlatform, type TestPlatform } from '../test/harness.ts';

const SECONDS = Number(process.env['BENCH_SECONDS'] || 10);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] || 2);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] || 50);
const PAN = '4242424242424242';

interface Load {
  name: 'tokenize' | 'authorize';
  url: string;
  body: string;
  ok: number;
}

async function run(t: TestPlatform, load: Load, seconds: number): Promise<Result> {
  const result = await autocannon({
    url: load.url,
    method: 'POST',
    headers: { authorization: `Bearer ${t.secretKey}`, 'content-type': 'application/json' },
    body: load.body,
    connections: CONNECTIONS,
    duration: seconds,
    tlsOptions: { ca: await readFile(t.platform.caFile) },
  });
  const good = result.statusCodeStats[String(load.ok)]?.count ?? 0;
  const total = Object.values(result.statusCodeStats).reduce((sum, s) => sum + s.count, 0);
  if (good !== total || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${load.name}: bad answers ${JSON.stringify(result.statusCodeStats)}, errors ${result.errors}`,
    );
  }
  return result;
}

async function main(): Promise<void> {
  const backend = backends().at(-1) ?? 'embedded';
  const t = await startTestPlatform(backend, 'bench-payments', {
    roles: ['vault', 'api', 'acquirer'],
    env: {
      CARDHOLD_LOG_LEVEL: 'warn',
      CARDHOLD_AUDIT_STREAM: 'none',
      CARDHOLD_RATE_LIMIT_TOKENIZE_PER_MINUTE: '0',
    },
  });
  try {
    const tokenized = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
      body: { pan: PAN, exp_month: 12, exp_year: 2030 },
    });
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
          payment_method: tokenized.json.token.id,
        }),
        ok: 200,
      },
    ];
    for (const load of loads) await run(t, load, 3);
    const best: Record<Load['name'], { rps: number; p50: number; p99: number }> = {
      tokenize: { rps: 0, p50: 0, p99: 0 },
      authorize: { rps: 0, p50: 0, p99: 0 },
    };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const load of round % 2 ? loads : [...loads].reverse()) {
        const r = await run(t, load, SECONDS);
        process.stdout.write(
          `round ${round} ${load.name}: ${r.requests.average.toFixed(0)}/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms\n`,
        );
        if (r.requests.average > best[load.name].rps)
          best[load.name] = { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
      }
    }
    const ratio = best.authorize.rps / best.tokenize.rps;
    process.stdout.write(
      `backend ${backend}, ${CONNECTIONS} connections, ${SECONDS}s x ${ROUNDS} rounds, ${cpus().length} cores, node ${process.version}\n` +
        `best tokenize ${best.tokenize.rps.toFixed(0)}/s (p99 ${best.tokenize.p99} ms); ` +
        `best authorize ${best.authorize.rps.toFixed(0)}/s (p50 ${best.authorize.p50} ms, p99 ${best.authorize.p99} ms)\n` +
        `authorize/tokenize ${ratio.toFixed(2)} (target >= 0.4), authorize p99 ${best.authorize.p99} ms (target < 60)\n`,
    );
  } finally {
    await t.close();
  }
}

await main();
