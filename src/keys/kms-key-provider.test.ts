import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startKmsStandIn } from '../../test/kms-stand-in.ts';
import { AwsKmsClient } from './aws-kms-client.ts';
import { KmsKeyProvider } from './kms-key-provider.ts';

describe('aws-kms key provider against a local KMS stand-in, through the real SDK', () => {
  let kms: Awaited<ReturnType<typeof startKmsStandIn>>;
  const client = (keyId = kms.keyId) =>
    new AwsKmsClient({
      keyId,
      region: 'eu-west-1',
      endpoint: kms.endpoint,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-secret' },
    });
  before(async () => {
    kms = await startKmsStandIn();
  });
  after(() => kms.close());

  test('wraps and unwraps with the context as encryption context; a wrong context or key is refused', async () => {
    const provider = new KmsKeyProvider(client(), 'production');
    await provider.check();
    const kek = Buffer.alloc(32, 5);
    const wrapped = await provider.wrap(kek, 'cardhold/kek/v1|production|mer_1|pan|1');
    assert.ok(!wrapped.includes(kek));
    assert.deepEqual(await provider.unwrap(wrapped, 'cardhold/kek/v1|production|mer_1|pan|1'), kek);
    await assert.rejects(
      provider.unwrap(wrapped, 'cardhold/kek/v1|production|mer_2|pan|1'),
      /InvalidCiphertext/,
    );
    const otherKey = new KmsKeyProvider(client('arn:aws:kms:eu-west-1:000000000000:key/other'), 'production');
    // The wrapped form names its KMS key: another key is refused before KMS is asked.
    await assert.rejects(otherKey.unwrap(wrapped, 'cardhold/kek/v1|production|mer_1|pan|1'), {
      code: 'key_provider_unavailable',
    });
    // And KMS itself refuses a ciphertext under another key than the one named in Decrypt.
    await assert.rejects(
      client('arn:aws:kms:eu-west-1:000000000000:key/other').decrypt(wrapped.subarray(6 + kms.keyId.length), {
        'cardhold:context': 'cardhold/kek/v1|production|mer_1|pan|1',
        'cardhold:environment': 'production',
      }),
      /NotFound/,
    );
    assert.deepEqual([...new Set(kms.calls)].sort(), [
      'TrentService.Decrypt',
      'TrentService.DescribeKey',
      'TrentService.Encrypt',
    ]);
    await provider.close();
    await otherKey.close();
  });

  test('environment separation: a development vault cannot unwrap a production key', async () => {
    const production = new KmsKeyProvider(client(), 'production');
    const development = new KmsKeyProvider(client(), 'development');
    const wrapped = await production.wrap(Buffer.alloc(32, 1), 'ctx');
    await assert.rejects(development.unwrap(wrapped, 'ctx'), /InvalidCiphertext/);
    await production.close();
    await development.close();
  });
});
