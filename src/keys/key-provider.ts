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
  /** Throws when the provider cannot serve (`key_provider_sealed` while sealed); readiness calls it. */
  check(): Promise<void>;
  close(): Promise<void>;
  /** True while a sealed provider waits for its custodians' shares: it wraps and unwraps nothing. */
  readonly sealed: boolean;
}

export interface SealStatus {
  sealed: boolean;
  /** Shares needed, shares issued, and distinct shares held so far in this unseal attempt. */
  threshold: number;
  shares: number;
  submitted: number;
  seal_id: string;
  environment: KeyEnvironment;
}

/** A provider whose master key custodians unseal with k-of-n shares, and anyone entitled can seal. */
export interface SealableKeyProvider extends KeyProvider {
  sealStatus(): SealStatus;
  /** Takes one share; the threshold-th distinct share unseals. Refusals throw a `key_share_*` error. */
  submitShare(share: string): Promise<SealStatus & { index: number }>;
  /** Zeroes the master key and any shares held; true when it was unsealed. */
  seal(): boolean;
  /** Resolves when the provider is (or next becomes) unsealed. */
  whenUnsealed(): Promise<void>;
  /** Hears every change of the seal state. */
  onSealChange(listener: (sealed: boolean) => void): void;
}

export function isSealable(provider: KeyProvider): provider is SealableKeyProvider {
  return typeof (provider as Partial<SealableKeyProvider>).submitShare === 'function';
}
