import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testCards } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform } from '../../test/harness.ts';
import {
  createSoftHsmMasterKey,
  initSoftHsmToken,
  pkcs11Env,
  SOFTHSM_LIBRARY,
  type SoftHsmToken,
  softHsmAvailable,
} from '../../test/softhsm.ts';
import { Pkcs11KeyProvider } from './pkcs11-key-provider.ts';

const skip = softHsmAvailable()
  ? false
  : 'SoftHSM2 is not installed (apt-get install softhsm2; .ci/run does)';

describe('pkcs11 key provider on SoftHSM2', { skip }, () => {
  let token: SoftHsmToken;
  const options = () => ({
    library: SOFTHSM_LIBRARY,
    tokenLabel: token.label,
    pin: token.pin,
    keyLabel: 'cardhold-master',
    environment: 'production' as const,
  });
  before(async () => {
    token = await initSoftHsmToken();
  });
  after(() => token.remove());

  test('creates a non-extractable master key, wraps and unwraps, rotates, and reads old keys after a restart', async () => {
    await assert.rejects(Pkcs11KeyProvider.open(options()), /no master key/);
    const first = await Pkcs11KeyProvider.open(options(), false);
    assert.equal(first.createMasterKey(), 1);
    assert.deepEqual(first.masterKeyAttributes(1), { sensitive: true, extractable: false, wrap: false });
    const kek = Buffer.alloc(32, 3);
    const wrappedV1 = await first.wrap(kek, 'cardhold/kek/v1|production|mer_1|pan|1');
    assert.equal(wrappedV1.readUInt32BE(4), 1);
    assert.ok(!wrappedV1.includes(kek), 'the wrapped key does not contain the key');
    assert.deepEqual(await first.unwrap(wrappedV1, 'cardhold/kek/v1|production|mer_1|pan|1'), kek);
    // Bound to its context: another merchant's context does not open it.
    await assert.rejects(first.unwrap(wrappedV1, 'cardhold/kek/v1|production|mer_2|pan|1'));
    const tampered = Buffer.from(wrappedV1);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    await assert.rejects(first.unwrap(tampered, 'cardhold/kek/v1|production|mer_1|pan|1'));

    // Rotation: a new version wraps, the old one still unwraps what it wrapped.
    assert.equal(first.createMasterKey(), 2);
    const wrappedV2 = await first.wrap(kek, 'ctx2');
    assert.equal(wrappedV2.readUInt32BE(4), 2);
    await first.close();

    const restarted = await Pkcs11KeyProvider.open(options());
    assert.deepEqual(restarted.versions, [1, 2]);
    await restarted.check();
    assert.deepEqual(await restarted.unwrap(wrappedV1, 'cardhold/kek/v1|production|mer_1|pan|1'), kek);
    assert.deepEqual(await restarted.unwrap(wrappedV2, 'ctx2'), kek);
    await restarted.close();

    // Environment separation: the environment is bound in the AAD, so a development vault on the same
    // token cannot open a production key.
    const development = await Pkcs11KeyProvider.open({ ...options(), environment: 'development' });
    await assert.rejects(development.unwrap(wrappedV2, 'ctx2'));
    await development.close();
  });

  test('parallel wraps on one provider stay correct', async () => {
    const provider = await Pkcs11KeyProvider.open(options());
    const keys = Array.from({ length: 200 }, (_, i) => Buffer.alloc(32, i));
    const wrapped = await Promise.all(keys.map((k, i) => provider.wrap(k, `c${i}`)));
    const back = await Promise.all(wrapped.map((w, i) => provider.unwrap(w, `c${i}`)));
    for (const [i, k] of back.entries()) assert.deepEqual(k, keys[i]);
    await provider.close();
  });
});

for (const backend of backends()) {
  describe(`vault on a pkcs11 key provider (${backend})`, { skip }, () => {
    test('tokenizes, restarts on the same token and database, and reads its old tokens in full', async () => {
      const token = await initSoftHsmToken('cardhold-vault');
      await createSoftHsmMasterKey(token, 'development');
      const env = pkcs11Env(token);
      const first = await startTestPlatform(backend, 'pkcs11-vault', { env });
      let tokenId: string;
      try {
        const created = await first.request<{ token: { id: string } }>(
          'POST',
          `${first.vaultUrl}/v1/tokens`,
          {
            body: { pan: testCards.mastercard, exp_month: 11, exp_year: futureYear },
          },
        );
        assert.equal(created.status, 201);
        tokenId = created.json.token.id;
        const [kek] = await first.adminSql<{ provider: string; environment: string }[]>`
          select provider, environment from vault.key_encryption_keys limit 1`;
        assert.deepEqual({ ...kek }, { provider: 'pkcs11', environment: 'development' });
      } finally {
        await first.close({ keepDataDir: backend === 'embedded' });
      }
      if (backend !== 'embedded') return token.remove();
      const second = await startTestPlatform(backend, 'pkcs11-vault-restart', {
        env,
        dataDir: first.dataDir,
      });
      try {
        const vault = second.platform.services.vault;
        assert.ok(vault);
        const revealed = await vault.tokens.reveal(second.access, tokenId, 'pkcs11 restart test');
        assert.equal(revealed.pan.expose(), testCards.mastercard);
      } finally {
        await second.close();
        await token.remove();
      }
    });
  });
}
