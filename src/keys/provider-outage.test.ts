import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testCards } from '../../test/fixtures/cards.ts';
import { futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { isCardholdError } from '../shared/errors.ts';
import type { KeyProvider } from './key-provider.ts';

/**
 * Keys are cached so that the provider is not asked per card; fail closed still holds: once the
 * provider is gone, the vault's own periodic check (CARDHOLD_KEY_PROVIDER_CHECK_SECONDS) drops every
 * cached key, and no card is opened or sealed until the provider answers again.
 */
describe('key provider outage after the keys are cached', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform('external', 'provider-outage', {
      env: { CARDHOLD_KEY_PROVIDER_CHECK_SECONDS: '1' },
    });
  });
  after(async () => {
    await t?.close();
  });

  test('card data stops being served within the check interval, and is served again once the provider is back', async () => {
    const vault = t.platform.services.vault;
    assert.ok(vault);
    const made = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
      body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
    });
    assert.equal(made.status, 201, made.text);
    const token = made.json.token.id;
    const reveal = () => vault.tokens.reveal(t.access, token, 'provider outage test');
    assert.equal((await reveal()).pan.expose(), testCards.visa, 'served while the provider is up');

    const provider = vault.keys.provider as KeyProvider & Record<string, unknown>;
    const healthy = { wrap: provider.wrap, unwrap: provider.unwrap, check: provider.check };
    const down = async () => {
      throw new Error('the key provider is unreachable');
    };
    Object.assign(provider, { wrap: down, unwrap: down, check: down });
    try {
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await assert.rejects(
        reveal(),
        (error) => isCardholdError(error) && error.code === 'key_provider_unavailable',
      );
      const tokenize = await t.request<{ code: string }>('POST', `${t.vaultUrl}/v1/tokens`, {
        body: { pan: testCards.mastercard, exp_month: 12, exp_year: futureYear },
      });
      assert.equal(tokenize.status, 503, tokenize.text);
      assert.equal(tokenize.json.code, 'key_provider_unavailable');
    } finally {
      Object.assign(provider, healthy);
    }
    assert.equal((await reveal()).pan.expose(), testCards.visa, 'served again');
  });

  test('an unwrap that fails with an unclassified error is a provider failure, even while the health check passes', async () => {
    const vault = t.platform.services.vault;
    assert.ok(vault);
    const made = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
      body: { pan: testCards.amex, exp_month: 12, exp_year: futureYear },
    });
    assert.equal(made.status, 201, made.text);
    const reveal = () => vault.tokens.reveal(t.access, made.json.token.id, 'wrapped key test');
    const failures = async () =>
      Number(
        /^cardhold_control_failures_total\{control="key_provider",role="vault"\} (\d+)/m.exec(
          (await t.platform.services.metrics.vault?.metrics()) ?? '',
        )?.[1],
      );
    const before = await failures();
    const provider = vault.keys.provider as KeyProvider & Record<string, unknown>;
    const unwrap = provider.unwrap;
    // A general error from the provider's decrypt (SoftHSM2 answers a failed AES-GCM tag this way, and a
    // device error or a revoked Decrypt permission alike) while its cheaper health check still passes:
    // fail closed, counted as a key provider failure (PCI DSS 10.7.2), not called tampering.
    Object.assign(provider, {
      unwrap: async () => {
        throw Object.assign(new Error('CKR_GENERAL_ERROR'), { code: 5 });
      },
    });
    try {
      vault.keys.forget();
      await assert.rejects(
        reveal(),
        (error) => isCardholdError(error) && error.code === 'key_provider_unavailable',
      );
      assert.equal(await failures(), before + 1, 'counted as a key provider failure');
    } finally {
      Object.assign(provider, { unwrap });
    }
    assert.equal((await reveal()).pan.expose(), testCards.amex, 'served again once unwrap works');
  });
});
