/**
 * What cardhold needs from a cloud KMS: encrypt and decrypt small secrets under one key that never
 * leaves the KMS, each bound to an encryption context that must match on decrypt. One adapter per cloud
 * implements it (AWS KMS in aws-kms-client.ts); `KmsKeyProvider` turns any adapter into a key provider.
 */
export interface KmsClient {
  /** A name for logs and the `provider` column, e.g. `aws-kms`. */
  readonly name: string;
  /** The KMS key this client encrypts under (its master key version, as cardhold records it). */
  readonly keyId: string;
  encrypt(plaintext: Buffer, context: Record<string, string>): Promise<Buffer>;
  /** Rejects when the ciphertext or the context does not match what was encrypted. */
  decrypt(ciphertext: Buffer, context: Record<string, string>): Promise<Buffer>;
  /** A cheap authenticated call that proves the key is usable (readiness). */
  check(): Promise<void>;
  close(): Promise<void>;
}
