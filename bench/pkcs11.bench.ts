/**
 * Tokenize throughput with the `pkcs11` key provider (SoftHSM2) beside the `local` provider, in the same
 * run on the same machine: two vaults on the same backend, loaded in alternation so that neither side
 * gets the warmer machine. Key-encrypting keys are unwrapped once and cached, so the target is that the
 * HSM costs nothing per card (pkcs11 within 10% of local).
 *
 *   npm run bench:pkcs11                     # needs SoftHSM2 (apt-get install softhsm2) and the test backends
 *   BENCH_SECONDS=5 BENCH_ROUNDS=3 npm run bench:pkcs11
 *
 * Only the Stripe test card is sent.
 */
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import autocannon from 'autocannon';
import { backends, startTestPlatform, type TestPlatform } from '../test/harness.ts';
import { createSoftHsmMasterKey, initSoftHsmToken } from '../test/softhsm.ts';

const SECONDS = Number(process.env['BENCH_SECONDS'] || 10);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] || 3);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] || 50);
const BODY = JSON.stringify({ pan: '4242424242424242', exp_month: 12, exp_year: 2030 });

async function tokenizeLoad(t: TestPlatform, seconds: number): Promise<number> {
  const ca = await readFile(t.platform.caFile);
  const result = await autocannon({
    url: `${t.vaultUrl}/v1/tokens`,
    method: 'POST',
    headers: { authorization: `Bearer ${t.secretKey}`, 'content-type': 'application/json' },
    body: BODY,
    connections: CONNECTIONS,
    duration: seconds,
    tlsOptions: { ca },
  });
  const good = result.statusCodeStats['201']?.count ?? 0;
  const total = Object.values(result.statusCodeStats).reduce((sum, s) => sum + s.count, 0);
  if (good !== total || result.errors > 0)
    throw new Error(`bad answers: ${JSON.stringify(result.statusCodeStats)}`);
  return result.requests.average;
}

async function main(): Promise<void> {
  const backend = backends().at(-1) ?? 'embedded';
  const token = await initSoftHsmToken('cardhold-bench');
  await createSoftHsmMasterKey(token, 'development');
  const env = { CARDHOLD_LOG_LEVEL: 'warn', CARDHOLD_AUDIT_STREAM: 'none' };
  const local = await startTestPlatform(backend, 'bench-local', {
    env: { ...env, CARDHOLD_KEY_PROVIDER: 'local' },
  });
  const hsm = await startTestPlatform(backend, 'bench-pkcs11', {
    env: {
      ...env,
      CARDHOLD_KEY_PROVIDER: 'pkcs11',
      CARDHOLD_PKCS11_TOKEN_LABEL: token.label,
      CARDHOLD_PKCS11_PIN: token.pin,
    },
  });
  const runs: Record<'local' | 'pkcs11', number[]> = { local: [], pkcs11: [] };
  // CPU time of this process (both vaults and the load generator; only one vault is loaded at a time)
  // per tokenize: unlike throughput, it does not fall when other work on the machine takes the cores.
  const cpuPerToken: Record<'local' | 'pkcs11', number[]> = { local: [], pkcs11: [] };
  try {
    for (const t of [local, hsm]) await tokenizeLoad(t, 3);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, t] of (round % 2
        ? [
            ['local', local],
            ['pkcs11', hsm],
          ]
        : [
            ['pkcs11', hsm],
            ['local', local],
          ]) as ['local' | 'pkcs11', TestPlatform][]) {
        const cpu = process.cpuUsage();
        const rps = await tokenizeLoad(t, SECONDS);
        const used = process.cpuUsage(cpu);
        const micros = (used.user + used.system) / (rps * SECONDS);
        runs[name].push(rps);
        cpuPerToken[name].push(micros);
        process.stdout.write(
          `round ${round} ${name}: ${rps.toFixed(0)} tokenize/s, ${micros.toFixed(0)} µs CPU per tokenize\n`,
        );
      }
    }
  } finally {
    await hsm.close();
    await local.close();
    await token.remove();
  }
  const best = (xs: number[]) => Math.max(...xs);
  const ratio = best(runs.pkcs11) / best(runs.local);
  const least = (xs: number[]) => Math.min(...xs);
  process.stdout.write(
    `backend ${backend}, ${CONNECTIONS} connections, ${SECONDS}s x ${ROUNDS} rounds, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n` +
      `least CPU per tokenize: local ${least(cpuPerToken.local).toFixed(0)} µs, pkcs11 ${least(cpuPerToken.pkcs11).toFixed(0)} µs, ratio ${(least(cpuPerToken.pkcs11) / least(cpuPerToken.local)).toFixed(3)}\n` +
      `best local ${best(runs.local).toFixed(0)}/s, best pkcs11 ${best(runs.pkcs11).toFixed(0)}/s, ratio ${ratio.toFixed(3)} (target >= 0.9)\n`,
  );
}

await main();
