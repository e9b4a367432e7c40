/** The purposes a key-encrypting key can serve; keys never cross purposes (PCI DSS 3.6.1). */
export type KeyPurpose = 'pan' | 'cvv' | 'fingerprint';

export const keyPurposes: readonly KeyPurpose[] = ['pan', 'cvv', 'fingerprint'];

export type KeyEnvironment = 'development' | 'production';

/**
 * The root of trust. It never hands out its master key: it only wraps and unwraps the key-encrypting
 * keys below it, each bound to a context string. HSM (PKCS#11) and cloud KMS providers implement the
 * same interface.
 */
export interface KeyProvider {
  readonly name: string;
  readonly environment: KeyEnvironment;
  wrap(plaintextKey: Buffer, context: string): Promise<Buffer>;
  unwrap(wrappedKey: Buffer, context: string): Promise<Buffer>;
  /** Throws when the provider cannot serve; readiness and fail-closed checks call it. */
  check(): Promise<void>;
  close(): Promise<void>;
}
