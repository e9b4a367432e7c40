import { DecryptCommand, DescribeKeyCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import type { KmsClient } from './kms-client.ts';

export interface AwsKmsOptions {
  keyId: string;
  region?: string | undefined;
  /** A VPC endpoint, or a local stand-in in tests. */
  endpoint?: string | undefined;
  /** Explicit credentials (tests); otherwise the SDK's default chain (IRSA, instance role, env). */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
}

/**
 * AWS KMS through the official SDK: Encrypt and Decrypt of a symmetric key with the context as the
 * EncryptionContext, which KMS binds as AAD and writes to CloudTrail. Decrypt names the key too, so a
 * ciphertext of another key is refused rather than opened with whatever key it names.
 */
export class AwsKmsClient implements KmsClient {
  readonly name = 'aws-kms';
  readonly #client: KMSClient;
  readonly keyId: string;

  constructor(options: AwsKmsOptions) {
    this.keyId = options.keyId;
    this.#client = new KMSClient({
      ...(options.region ? { region: options.region } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: 3,
    });
  }

  async encrypt(plaintext: Buffer, context: Record<string, string>): Promise<Buffer> {
    const out = await this.#client.send(
      new EncryptCommand({ KeyId: this.keyId, Plaintext: plaintext, EncryptionContext: context }),
    );
    if (!out.CiphertextBlob) throw new Error('KMS Encrypt returned no ciphertext');
    return Buffer.from(out.CiphertextBlob);
  }

  async decrypt(ciphertext: Buffer, context: Record<string, string>): Promise<Buffer> {
    const out = await this.#client.send(
      new DecryptCommand({ KeyId: this.keyId, CiphertextBlob: ciphertext, EncryptionContext: context }),
    );
    if (!out.Plaintext) throw new Error('KMS Decrypt returned no plaintext');
    const plaintext = Buffer.from(out.Plaintext);
    out.Plaintext.fill(0);
    return plaintext;
  }

  async check(): Promise<void> {
    const out = await this.#client.send(new DescribeKeyCommand({ KeyId: this.keyId }));
    if (out.KeyMetadata?.Enabled === false) throw new Error('the KMS key is disabled');
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}
