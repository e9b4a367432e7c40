import { CardholdError } from '../shared/errors.ts';
import type { KeyEnvironment, KeyProvider } from './key-provider.ts';
import type { KmsClient } from './kms-client.ts';
import { refuseCurrentVersion } from './master-keyring.ts';

const MAGIC = Buffer.from('CHK1');

/**
 * A cloud KMS as the root of trust: each key-encrypting key is encrypted by the KMS under the
 * deployment's KMS key, with the context string and the environment as the encryption context. KMS
 * calls cost milliseconds, so the key hierarchy's cache matters even more here: the KMS sees one
 * request per key-encrypting key, never one per card.
 *
 * Master rotation moves to a new KMS key: `CARDHOLD_KMS_KEY_ID` names the new key, and the previous keys
 * (`CARDHOLD_KMS_PREVIOUS_KEY_IDS`) keep decrypting until the master rewrap job has moved everything.
 * The wrapped form names its key, `CHK1 ‖ key id length (u16 BE) ‖ key id ‖ KMS ciphertext`; a bare KMS
 * ciphertext (written before master rotation existed) is tried with each configured key in turn.
 */
export class KmsKeyProvider implements KeyProvider {
  readonly name: string;
  readonly sealed = false;
  readonly environment: KeyEnvironment;
  readonly #kms: KmsClient;
  readonly #previous: KmsClient[];

  constructor(kms: KmsClient, environment: KeyEnvironment, previous: KmsClient[] = []) {
    this.#kms = kms;
    this.#previous = previous;
    this.name = kms.name;
    this.environment = environment;
  }

  get masterVersion(): string {
    return this.#kms.keyId;
  }

  versionOf(wrappedKey: Buffer): string {
    return parse(wrappedKey)?.keyId ?? 'unrecorded';
  }

  masterVersions(): string[] {
    return [...this.#previous.map((c) => c.keyId), this.#kms.keyId];
  }

  #context(context: string): Record<string, string> {
    return { 'cardhold:context': context, 'cardhold:environment': this.environment };
  }

  async wrap(plaintextKey: Buffer, context: string): Promise<Buffer> {
    const blob = await this.#kms.encrypt(plaintextKey, this.#context(context));
    const id = Buffer.from(this.#kms.keyId);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(id.length);
    return Buffer.concat([MAGIC, length, id, blob]);
  }

  async unwrap(wrappedKey: Buffer, context: string): Promise<Buffer> {
    const parsed = parse(wrappedKey);
    const clients = [this.#kms, ...this.#previous];
    if (parsed) {
      const client = clients.find((c) => c.keyId === parsed.keyId);
      if (!client) {
        throw new CardholdError('key_provider_unavailable', {
          detail: 'The key was wrapped by a KMS key that is not configured',
        });
      }
      return client.decrypt(parsed.blob, this.#context(context));
    }
    let failure: unknown;
    for (const client of clients) {
      try {
        return await client.decrypt(wrappedKey, this.#context(context));
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  }

  /** A new KMS key is created in AWS and configured, not here: this says how. */
  async rotateMaster(): Promise<string> {
    throw new Error(
      'aws-kms: create a new KMS key, set CARDHOLD_KMS_KEY_ID to it and list the old one in CARDHOLD_KMS_PREVIOUS_KEY_IDS, then run `cardhold keys rotate --purpose master` again',
    );
  }

  /** cardhold may not delete KMS keys: the operator schedules the old key's deletion in AWS. */
  async destroyMasterVersion(version: string): Promise<boolean> {
    refuseCurrentVersion(version, this.masterVersion);
    return false;
  }

  async check(): Promise<void> {
    await this.#kms.check();
  }

  async close(): Promise<void> {
    await Promise.all([this.#kms, ...this.#previous].map((c) => c.close()));
  }
}

function parse(wrapped: Buffer): { keyId: string; blob: Buffer } | undefined {
  if (wrapped.length < 6 || !wrapped.subarray(0, 4).equals(MAGIC)) return undefined;
  const length = wrapped.readUInt16BE(4);
  if (wrapped.length <= 6 + length) return undefined;
  return {
    keyId: wrapped.subarray(6, 6 + length).toString(),
    blob: wrapped.subarray(6 + length),
  };
}
