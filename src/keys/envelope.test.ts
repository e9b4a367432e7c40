import assert from 'node:assert/strict';
import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openRecord, sealRecord } from './envelope.ts';
import { LocalKeyProvider } from './local-key-provider.ts';

const kek = createSecretKey(randomBytes(32));
const aad = Buffer.from('cardhold/pan/v1|mer_a|tok_a|1');
const flip = (b: Buffer, i: number) => {
  const c = Buffer.from(b);
  c[i] = (c[i] as number) ^ 1;
  return c;
};

test('envelope round trip with a fresh data key per record', () => {
  const plain = Buffer.from('{"pan":"x"}');
  const a = sealRecord(kek, plain, aad);
  const b = sealRecord(kek, plain, aad);
  assert.notDeepEqual(a.ciphertext, b.ciphertext);
  assert.notDeepEqual(a.wrappedDataKey, b.wrappedDataKey);
  assert.deepEqual(openRecord(kek, a, aad), plain);
});

test('any change to ciphertext, wrapped key, AAD or key is refused', () => {
  const sealed = sealRecord(kek, Buffer.from('secret'), aad);
  const refused = { code: 'token_integrity_failed' };
  assert.throws(() => openRecord(kek, { ...sealed, ciphertext: flip(sealed.ciphertext, 30) }, aad), refused);
  assert.throws(
    () => openRecord(kek, { ...sealed, ciphertext: flip(sealed.ciphertext, 3) }, aad),
    refused,
    'IV',
  );
  assert.throws(
    () => openRecord(kek, { ...sealed, wrappedDataKey: flip(sealed.wrappedDataKey, 40) }, aad),
    refused,
  );
  assert.throws(() => openRecord(kek, sealed, Buffer.from('cardhold/pan/v1|mer_a|tok_b|1')), refused);
  assert.throws(() => openRecord(kek, sealed, Buffer.from('cardhold/pan/v1|mer_a|tok_a|2')), refused);
  assert.throws(() => openRecord(createSecretKey(randomBytes(32)), sealed, aad), refused);
  assert.throws(
    () => openRecord(kek, { ...sealed, ciphertext: sealed.ciphertext.subarray(0, 10) }, aad),
    refused,
  );
});

test('the local development key is created once, 0600, labelled, and binds wrapped keys to their context', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-keys-'));
  try {
    const one = await LocalKeyProvider.open(dir);
    assert.equal((await stat(one.file)).mode & 0o777, 0o600);
    assert.equal((await stat(path.dirname(one.file))).mode & 0o777, 0o700);
    assert.equal(one.environment, 'development');
    const wrapped = await one.wrap(Buffer.alloc(32, 7), 'ctx-a');
    const two = await LocalKeyProvider.open(dir);
    assert.deepEqual(await two.unwrap(wrapped, 'ctx-a'), Buffer.alloc(32, 7), 'the same key after reopening');
    await assert.rejects(two.unwrap(wrapped, 'ctx-b'), { code: 'token_integrity_failed' });
    await two.close();
    await assert.rejects(two.check(), { code: 'key_provider_unavailable' }, 'a closed provider fails closed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
