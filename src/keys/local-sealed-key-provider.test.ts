import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isCardholdError } from '../shared/errors.ts';
import { formatShare } from './key-share.ts';
import { initSealedKey, LocalSealedKeyProvider } from './local-sealed-key-provider.ts';

const codeOf = (code: string) => (error: unknown) => isCardholdError(error) && error.code === code;

async function ceremony(shares = 5, threshold = 3, environment: 'development' | 'production' = 'production') {
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-sealed-'));
  const file = path.join(dir, 'master.sealed.json');
  const created = await initSealedKey({ file, shares, threshold, environment });
  return { file, ...created };
}

/** A share whose checksum is recomputed after its bytes were changed: only the GCM tag can catch it. */
function forged(share: string, sealId: string): string {
  const bytes = Buffer.from(share.split('.')[3] as string, 'base64url');
  bytes[0] = (bytes[0] as number) ^ 0x01;
  return formatShare(sealId, bytes);
}

describe('local-sealed key provider: k-of-n unseal', () => {
  test('sealed until exactly threshold distinct shares; serves nothing while sealed', async () => {
    const { file, shares } = await ceremony();
    assert.equal(shares.length, 5);
    assert.equal(new Set(shares).size, 5);
    const provider = await LocalSealedKeyProvider.open(file, 'production');
    assert.equal(provider.sealed, true);
    await assert.rejects(provider.check(), codeOf('key_provider_sealed'));
    await assert.rejects(provider.wrap(Buffer.alloc(32), 'ctx'), codeOf('key_provider_sealed'));

    let status = await provider.submitShare(shares[4] as string);
    assert.deepEqual([status.sealed, status.submitted, status.threshold], [true, 1, 3]);
    status = await provider.submitShare(shares[1] as string);
    assert.deepEqual([status.sealed, status.submitted], [true, 2]);
    await assert.rejects(provider.check(), codeOf('key_provider_sealed'));
    status = await provider.submitShare(shares[2] as string);
    assert.equal(status.sealed, false);
    assert.equal(status.submitted, 0, 'shares are not held once the threshold is reached');
    await provider.check();

    const wrapped = await provider.wrap(Buffer.alloc(32, 9), 'ctx');
    assert.deepEqual(await provider.unwrap(wrapped, 'ctx'), Buffer.alloc(32, 9));
    assert.equal(provider.seal(), true);
    await assert.rejects(provider.unwrap(wrapped, 'ctx'), codeOf('key_provider_sealed'));

    // A different three of the five open the same master key after a restart.
    const again = await LocalSealedKeyProvider.open(file, 'production');
    for (const i of [0, 3, 1]) await again.submitShare(shares[i] as string);
    assert.deepEqual(await again.unwrap(wrapped, 'ctx'), Buffer.alloc(32, 9));
  });

  test('every 3 of 5 unseal the same key', async () => {
    const { file, shares } = await ceremony();
    const first = await LocalSealedKeyProvider.open(file, 'production');
    for (const s of shares.slice(0, 3)) await first.submitShare(s);
    const wrapped = await first.wrap(Buffer.alloc(32, 1), 'c');
    for (let a = 0; a < 5; a++)
      for (let b = a + 1; b < 5; b++)
        for (let c = b + 1; c < 5; c++) {
          const p = await LocalSealedKeyProvider.open(file, 'production');
          for (const i of [c, a, b]) await p.submitShare(shares[i] as string);
          assert.deepEqual(await p.unwrap(wrapped, 'c'), Buffer.alloc(32, 1), `shares ${a},${b},${c}`);
        }
  });

  test('an emergency seal while the last share is being combined wins: the vault stays sealed', async () => {
    const { file, shares } = await ceremony(3, 2);
    const provider = await LocalSealedKeyProvider.open(file, 'production');
    await provider.submitShare(shares[0] as string);
    const last = provider.submitShare(shares[1] as string);
    assert.equal(provider.seal(), false, 'it was not unsealed yet');
    await assert.rejects(last, codeOf('key_provider_sealed'));
    assert.equal(provider.sealed, true);
    await assert.rejects(provider.wrap(Buffer.alloc(32), 'ctx'), codeOf('key_provider_sealed'));
    // A fresh unseal afterwards works.
    for (const share of shares.slice(1)) await provider.submitShare(share);
    assert.equal(provider.sealed, false);
  });

  test('a repeated share, or a second share with the same index, is refused', async () => {
    const { file, shares } = await ceremony();
    const provider = await LocalSealedKeyProvider.open(file, 'production');
    await provider.submitShare(shares[0] as string);
    await assert.rejects(provider.submitShare(shares[0] as string), codeOf('key_share_duplicate'));
    await assert.rejects(provider.submitShare(` ${shares[0]}\n`), codeOf('key_share_duplicate'));
    assert.equal(provider.sealStatus().submitted, 1);
    assert.equal(provider.sealed, true);
  });

  test('a mistyped or corrupted share is named at submission and never echoed', async () => {
    const { file, shares, sealId } = await ceremony();
    const provider = await LocalSealedKeyProvider.open(file, 'production');
    const share = shares[2] as string;
    const parts = share.split('.');
    const data = parts[3] as string;
    parts[3] = data.slice(0, 5) + (data[5] === 'A' ? 'B' : 'A') + data.slice(6);
    const corrupted = parts.join('.');
    await assert.rejects(provider.submitShare(corrupted), (error: unknown) => {
      assert.ok(isCardholdError(error) && error.code === 'key_share_invalid');
      assert.equal(error.detail, `Share ${parts[2]} fails its checksum: it was mistyped or corrupted`);
      assert.ok(!error.detail.includes(data.slice(0, 10)), 'the share is never in the error');
      return true;
    });
    await assert.rejects(provider.submitShare(share.slice(0, -3)), codeOf('key_share_invalid'));
    await assert.rejects(provider.submitShare('not a share'), codeOf('key_share_invalid'));
    const other = await ceremony();
    await assert.rejects(provider.submitShare(other.shares[0] as string), (error: unknown) => {
      assert.ok(isCardholdError(error) && error.code === 'key_share_invalid');
      assert.match(error.detail, /another sealed key/);
      return true;
    });
    assert.equal(provider.sealStatus().submitted, 0);
    assert.ok(sealId.length > 0);
  });

  test('a forged share with a valid checksum fails the seal tag: all shares discarded, then a good set unseals', async () => {
    const { file, shares, sealId } = await ceremony();
    const provider = await LocalSealedKeyProvider.open(file, 'production');
    await provider.submitShare(shares[0] as string);
    await provider.submitShare(forged(shares[1] as string, sealId));
    await assert.rejects(provider.submitShare(shares[2] as string), codeOf('key_shares_mismatch'));
    assert.equal(provider.sealed, true);
    assert.equal(provider.sealStatus().submitted, 0);
    for (const s of shares.slice(0, 3)) await provider.submitShare(s);
    assert.equal(provider.sealed, false);
  });

  test('editing the threshold or environment in the file breaks the seal', async () => {
    const { file, shares } = await ceremony(5, 3, 'production');
    const content = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...content, threshold: 2 }));
    const provider = await LocalSealedKeyProvider.open(file, 'production');
    await provider.submitShare(shares[0] as string);
    await assert.rejects(provider.submitShare(shares[1] as string), codeOf('key_shares_mismatch'));
  });

  test('environment separation: a production vault refuses a development key and the reverse', async () => {
    const dev = await ceremony(3, 2, 'development');
    await assert.rejects(
      LocalSealedKeyProvider.open(dev.file, 'production'),
      codeOf('key_environment_mismatch'),
    );
    const prod = await ceremony(3, 2, 'production');
    await assert.rejects(
      LocalSealedKeyProvider.open(prod.file, 'development'),
      codeOf('key_environment_mismatch'),
    );
  });

  test('a ceremony never overwrites a sealed key, and refuses a threshold below 2', async () => {
    const { file } = await ceremony();
    await assert.rejects(
      initSealedKey({ file, shares: 5, threshold: 3, environment: 'production' }),
      /EEXIST/,
    );
    await assert.rejects(
      initSealedKey({ file: `${file}.2`, shares: 3, threshold: 1, environment: 'production' }),
      /threshold/,
    );
    await assert.rejects(
      initSealedKey({ file: `${file}.3`, shares: 2, threshold: 3, environment: 'production' }),
      /threshold/,
    );
  });
});
