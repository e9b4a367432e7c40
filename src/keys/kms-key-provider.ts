import type { KeyEnvironment, KeyProvider } from './key-provider.ts';
import type { KmsClient } from './kms-client.ts';

/**
 * A cloud KMS as the root of trust: each key-encrypting key is encrypted by the KMS under the
 * deployment's KMS key, with the context string and the environment as the encryption context. KMS
 * calls cost milliseconds, so the key hierarchy's cache matters even more here: the KMS sees one
 * request per key-encrypting key, never one per card.
 */
export class KmsKeyProvider implements KeyProvider {
  readonly name: string;
  readonly sealed = false;
  readonly environment: KeyEnvironment;
  readonly #kms: KmsClient;

  constructor(kms: KmsClient, environment: KeyEnvironment) {
    this.#kms = kms;
    this.name = kms.name;
    this.environment = environment;
  }

  #context(context: string): Record<string, string> {
    return { 'cardhold:context': context, 'cardhold:environment': this.environment };
  }

  wrap(plaintextKey: Buffer, context: string): Promise<Buffer> {
    return this.#kms.encrypt(plaintextKey, this.#context(context));
  }

  unwrap(wrappedKey: Buffer, context: string): Promise<Buffer> {
    return this.#kms.decrypt(wrappedKey, this.#context(context));
  }

  check(): Promise<void> {
    return this.#kms.check();
  }

  close(): Promise<void> {
    return this.#kms.close();
  }
}
