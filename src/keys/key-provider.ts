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
  /**
   * The master key version new wraps use: `1`, `2`, … for local, local-sealed and pkcs11; the KMS key id
   * for aws-kms. Recorded beside every wrapped key (`master_version`) so that master rotation moves only
   * what an old version still wraps.
   */
  readonly masterVersion: string;
  /** The master key version that wrapped this blob. */
  versionOf(wrappedKey: Buffer): string;
  /** Every master key version this provider can unwrap with, the current one included. */
  masterVersions(): string[];
  /**
   * A new master key version that wraps from now on; the older ones keep unwrapping until retired
   * (docs/keys.md, "Master key rotation"). Returns the new version.
   */
  rotateMaster(): Promise<string>;
  /**
   * Destroys an old master key version, which then unwraps nothing. False when only the operator can
   * (aws-kms: the KMS key's deletion is scheduled in AWS). Refuses the current version.
   */
  destroyMasterVersion(version: string): Promise<boolean>;
}

/** How often a provider looks for master key versions created by another process (a rotation). */
export const MASTER_REFRESH_MS = 30_000;

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
