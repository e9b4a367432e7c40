import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, mock, test } from 'node:test';
import { loadConfig } from '../config/config.ts';
import type { TlsMaterial } from '../http/create-server.ts';
import { openTlsSource } from './tls.ts';

/**
 * Certificate rotation from CARDHOLD_TLS_DIR, on a simulated clock: what is applied, and what happens
 * when the files on disk cannot be applied (a key and certificate that do not match, which is what a
 * reload sees when it reads between a rotation's two writes).
 */

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cardhold-tls-'));
  await writeFile(path.join(dir, 'ca.crt'), 'ca-1');
  await writeFile(path.join(dir, 'vault.crt'), 'cert-1');
  await writeFile(path.join(dir, 'vault.key'), 'key-1');
});
after(() => rm(dir, { recursive: true, force: true }));

/** Watches the vault's files, polled every simulated second, with these callbacks. */
async function watching(apply: (m: TlsMaterial) => void, onError: (error: unknown) => void) {
  const config = loadConfig({ CARDHOLD_TLS_DIR: dir, CARDHOLD_TLS_RELOAD_SECONDS: '1' }, '/srv');
  return (await openTlsSource(config)).watch('vault', apply, onError);
}

/** One poll: the interval fires, then (in real time: only setInterval is simulated) its file reads finish. */
async function poll(): Promise<void> {
  mock.timers.tick(1000);
  await new Promise((resolve) => setTimeout(resolve, 250));
}

test('a pair that cannot be applied is reported once and the running one kept; the next change is applied', async () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const applied: string[] = [];
    const errors: unknown[] = [];
    let refuse = false;
    const apply = (m: TlsMaterial) => {
      // As setSecureContext does for a key that does not belong to the certificate.
      if (refuse) throw new Error('key values mismatch');
      applied.push(`${m.cert.toString()}+${m.key.toString()}`);
    };
    const stop = await watching(apply, (error) => errors.push(error));
    await poll();
    assert.deepEqual(applied, ['cert-1+key-1'], 'the first poll applies what is there, once');
    await poll();
    assert.deepEqual(applied, ['cert-1+key-1'], 'unchanged files are not applied again');
    applied.length = 0;

    // The key is rotated first; the reload reads it beside the old certificate.
    await writeFile(path.join(dir, 'vault.key'), 'key-2');
    refuse = true;
    await poll();
    await poll();
    assert.equal(errors.length, 1, 'reported once, not at every poll');
    assert.match(String(errors[0]), /mismatch/);
    assert.deepEqual(applied, []);

    // The certificate follows: the pair is applied at the next poll.
    refuse = false;
    await writeFile(path.join(dir, 'vault.crt'), 'cert-2');
    await poll();
    assert.deepEqual(applied, ['cert-2+key-2']);
    await poll();
    assert.deepEqual(applied, ['cert-2+key-2'], 'applied once');
    stop();
  } finally {
    mock.timers.reset();
  }
});

test('a pair refused before is applied when the same files come back after a change', async () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const applied: string[] = [];
    let refuse = true;
    const stop = await watching(
      (m) => {
        if (refuse) throw new Error('not now');
        applied.push(m.cert.toString());
      },
      () => undefined,
    );
    await poll();
    await writeFile(path.join(dir, 'vault.crt'), 'cert-3');
    await poll();
    assert.deepEqual(applied, []);
    // The running context was kept, so the same change must still be applied once it can be.
    refuse = false;
    await writeFile(path.join(dir, 'ca.crt'), 'ca-2');
    await poll();
    assert.deepEqual(applied, ['cert-3']);
    stop();
  } finally {
    mock.timers.reset();
  }
});
