import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent, fetch } from 'undici';
import { testCards } from '../../test/fixtures/cards.ts';
import { futureYear } from '../../test/harness.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function waitFor(child: ChildProcess, output: () => string, pattern: RegExp, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}; output so far:\n${output()}`)),
      ms,
    );
    const check = () => {
      if (pattern.test(output())) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}:\n${output()}`));
    });
  });
}

test('npm start serves HTTPS on embedded defaults, tokenizes, and stops cleanly on SIGTERM', {
  timeout: 120_000,
}, async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cardhold-start-'));
  const logFile = path.resolve(root, 'test-output', 'logs', `npm-start-${process.pid}.log`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('CARDHOLD_') && v !== undefined) env[k] = v;
  Object.assign(env, {
    PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}`,
    CARDHOLD_DATA_DIR: dataDir,
    CARDHOLD_VAULT_PORT: '0',
    CARDHOLD_API_PORT: '0',
    CARDHOLD_ACQUIRER_PORT: '0',
    CARDHOLD_VAULT_METRICS_PORT: '0',
    CARDHOLD_API_METRICS_PORT: '0',
    CARDHOLD_ACQUIRER_METRICS_PORT: '0',
    CARDHOLD_DEMO_PORT: '0',
    CARDHOLD_LOG_FILE: logFile,
  });
  // detached: its own process group, so SIGTERM reaches npm and cardhold as a terminal's Ctrl-C would.
  const child = spawn('npm', ['start', '--silent'], {
    cwd: root,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    // 'close', not 'exit': npm exits at once on a signal, cardhold (holding the same pipes) exits after draining.
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  try {
    await waitFor(child, () => stdout + stderr, /stop with Ctrl-C/, 90_000);
    const vaultUrl = /vault\s+(https:\/\/\S+)/.exec(stdout)?.[1];
    const caFile = /trust this CA for HTTPS: (\S+)/.exec(stdout)?.[1];
    const key = /demo secret key[^:]*: (sk_test_\S+)/.exec(stdout)?.[1];
    assert.ok(vaultUrl && caFile && key, 'the banner prints the vault URL, the CA file and a demo key');
    assert.match(vaultUrl, /^https:/);
    const dispatcher = new Agent({ connect: { ca: await readFile(caFile) } });
    const response = await fetch(`${vaultUrl}/v1/tokens`, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ pan: testCards.visaDebit, exp_month: 12, exp_year: futureYear }),
    });
    assert.equal(response.status, 201);
    const body = (await response.json()) as { token: { last4: string } };
    assert.equal(body.token.last4, '5556');
    // The demo checkout (issue 10): its own origin, the SDK loaded from the vault with integrity.
    const demoUrl = /demo checkout[^:]*: (https:\/\/\S+)/.exec(stdout)?.[1];
    assert.ok(demoUrl, 'the banner prints the demo checkout URL');
    assert.notEqual(new URL(demoUrl).origin, new URL(vaultUrl).origin);
    const page = await fetch(demoUrl, { dispatcher });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /\/sdk\/cardhold\.js" integrity="sha384-[A-Za-z0-9+/=]{64}"/);
    await dispatcher.close();
    // Plain HTTP is not served at all.
    await assert.rejects(fetch(vaultUrl.replace('https:', 'http:') + '/healthz'));

    process.kill(-(child.pid as number), 'SIGTERM');
    const { code, signal } = await exited;
    // npm itself dies of the signal; what matters is that cardhold drained, closed everything and said so.
    assert.ok(code === 0 || signal === 'SIGTERM', `npm exit ${code} ${signal}; stderr: ${stderr}`);
    assert.match(stdout, /cardhold: stopped/);
    assert.doesNotMatch(stdout + stderr, /shutdown failed|shutdown step failed/);
    await assert.rejects(
      access(path.join(dataDir, 'postgres', 'postmaster.pid')),
      'embedded PostgreSQL was stopped',
    );
  } finally {
    if (child.exitCode === null) process.kill(-(child.pid as number), 'SIGKILL');
    await writeFile(
      path.resolve(root, 'test-output', 'logs', `npm-start-${process.pid}.stdout`),
      stdout + stderr,
    );
    await rm(dataDir, { recursive: true, force: true });
  }
});
