import { hkdfSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { combine, split } from 'shamir-secret-sharing';
import { CardholdError } from '../shared/errors.ts';
import { open, seal } from './aes-gcm.ts';
import type { KeyEnvironment, SealableKeyProvider, SealStatus } from './key-provider.ts';
import { formatShare, type KeyShare, parseShare } from './key-share.ts';

const FORMAT = 'cardhold-sealed-master/v1';
const SECRET_BYTES = 32;

/** The sealed master key on disk: the master key only as AES-256-GCM ciphertext under the unseal key. */
interface SealedKeyFile {
  format: typeof FORMAT;
  label: string;
  seal_id: string;
  environment: KeyEnvironment;
  shares: number;
  threshold: number;
  created_at: string;
  sealed_master: string;
}

/** The header fields are bound as AAD, so editing the threshold or environment breaks the seal. */
const headerAad = (f: Pick<SealedKeyFile, 'seal_id' | 'environment' | 'shares' | 'threshold'>) =>
  Buffer.from(`${FORMAT}|${f.seal_id}|${f.environment}|${f.shares}|${f.threshold}`);

/** The key that opens the sealed master key, from the reconstructed Shamir secret. */
function unsealKey(secret: Uint8Array, sealId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.from(sealId), 'cardhold/unseal/v1', 32));
}

export function defaultSealedKeyFile(dataDir: string): string {
  return path.join(dataDir, 'keys', 'master.sealed.json');
}

/**
 * The key ceremony: a fresh master key sealed under a fresh unseal secret that is split into `shares`
 * Shamir shares of which `threshold` reconstruct it. Splitting an unseal secret rather than the master
 * key lets custodians be re-keyed later without touching anything the master key wraps. Returns the
 * shares, to be shown once, one to each custodian; they are never stored (by this function).
 */
export async function initSealedKey(options: {
  file: string;
  shares: number;
  threshold: number;
  environment: KeyEnvironment;
}): Promise<{ shares: string[]; sealId: string }> {
  const { file, shares, threshold, environment } = options;
  if (
    !Number.isInteger(threshold) ||
    threshold < 2 ||
    !Number.isInteger(shares) ||
    shares < threshold ||
    shares > 255
  ) {
    throw new Error('--threshold must be at least 2 and --shares between the threshold and 255');
  }
  const sealId = randomBytes(8).toString('hex');
  const secret = randomBytes(SECRET_BYTES);
  const master = randomBytes(32);
  const key = unsealKey(secret, sealId);
  try {
    // The library wants plain Uint8Arrays (not Buffers); the copy is zeroed with the rest.
    const plain = new Uint8Array(secret);
    const parts = await split(plain, shares, threshold).finally(() => plain.fill(0));
    const header = { seal_id: sealId, environment, shares, threshold };
    const content: SealedKeyFile = {
      format: FORMAT,
      label: `cardhold ${environment} master key, sealed (${threshold} of ${shares} custodian shares unseal it)`,
      ...header,
      created_at: new Date().toISOString(),
      sealed_master: seal(key, master, headerAad(header)).toString('base64'),
    };
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    // wx: a ceremony never overwrites an existing sealed key (and so never orphans its data).
    await writeFile(file, JSON.stringify(content, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    const texts = parts.map((part) => formatShare(sealId, part));
    for (const part of parts) part.fill(0);
    return { shares: texts, sealId };
  } finally {
    secret.fill(0);
    master.fill(0);
    key.fill(0);
  }
}

/**
 * `local-sealed`: starts sealed; serves nothing until `threshold` distinct custodian shares are
 * submitted. Submitted shares live only in this object's memory until the threshold is reached and are
 * then zeroed; a wrong share set fails the GCM tag of the sealed master key and is discarded whole.
 */
export class LocalSealedKeyProvider implements SealableKeyProvider {
  readonly name = 'local-sealed';
  readonly environment: KeyEnvironment;
  readonly file: string;
  readonly #header: SealedKeyFile;
  #master: Buffer | undefined;
  #pending: KeyShare[] = [];
  #combining = false;
  #unsealed = Promise.withResolvers<void>();
  readonly #listeners: Array<(sealed: boolean) => void> = [];

  private constructor(file: string, header: SealedKeyFile) {
    this.file = file;
    this.#header = header;
    this.environment = header.environment;
  }

  /** Opens the sealed key file; refuses a key of another environment than the one this vault runs in. */
  static async open(file: string, environment: KeyEnvironment): Promise<LocalSealedKeyProvider> {
    let parsed: SealedKeyFile;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8')) as SealedKeyFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(`no sealed master key at ${file}: run \`cardhold keys init\` first`);
      }
      throw new Error(`the sealed master key file ${file} is unreadable or corrupt`);
    }
    if (parsed.format !== FORMAT) throw new Error(`the sealed master key file ${file} has an unknown format`);
    if (parsed.environment !== environment) {
      throw new CardholdError('key_environment_mismatch', {
        detail: `The sealed master key is a ${parsed.environment} key and this vault runs in ${environment} mode`,
      });
    }
    return new LocalSealedKeyProvider(file, parsed);
  }

  get sealed(): boolean {
    return this.#master === undefined;
  }

  sealStatus(): SealStatus {
    return {
      sealed: this.sealed,
      threshold: this.#header.threshold,
      shares: this.#header.shares,
      submitted: this.#pending.length,
      seal_id: this.#header.seal_id,
      environment: this.environment,
    };
  }

  async submitShare(text: string): Promise<SealStatus & { index: number }> {
    const share = parseShare(text, this.#header.seal_id, SECRET_BYTES);
    if (!this.sealed) {
      share.bytes.fill(0);
      return { ...this.sealStatus(), index: share.index };
    }
    if (this.#combining || this.#pending.some((held) => held.index === share.index)) {
      share.bytes.fill(0);
      throw new CardholdError('key_share_duplicate', {
        field: 'share',
        detail: `Share ${share.index} was already submitted in this unseal attempt`,
      });
    }
    this.#pending.push(share);
    if (this.#pending.length < this.#header.threshold) return { ...this.sealStatus(), index: share.index };

    const shares = this.#pending;
    this.#pending = [];
    this.#combining = true;
    let secret: Uint8Array | undefined;
    let key: Buffer | undefined;
    try {
      const plain = shares.map((s) => new Uint8Array(s.bytes));
      secret = await combine(plain).finally(() => {
        for (const p of plain) p.fill(0);
      });
      key = unsealKey(secret, this.#header.seal_id);
      let master: Buffer;
      try {
        master = open(key, Buffer.from(this.#header.sealed_master, 'base64'), headerAad(this.#header));
      } catch {
        throw new CardholdError('key_shares_mismatch', { field: 'share' });
      }
      this.#master = master;
    } finally {
      for (const s of shares) s.bytes.fill(0);
      secret?.fill(0);
      key?.fill(0);
      this.#combining = false;
    }
    this.#unsealed.resolve();
    for (const listener of this.#listeners) listener(false);
    return { ...this.sealStatus(), index: share.index };
  }

  seal(): boolean {
    for (const s of this.#pending) s.bytes.fill(0);
    this.#pending = [];
    const wasUnsealed = !this.sealed;
    if (wasUnsealed) {
      this.#master?.fill(0);
      this.#master = undefined;
      this.#unsealed = Promise.withResolvers<void>();
      for (const listener of this.#listeners) listener(true);
    }
    return wasUnsealed;
  }

  whenUnsealed(): Promise<void> {
    return this.#unsealed.promise;
  }

  onSealChange(listener: (sealed: boolean) => void): void {
    this.#listeners.push(listener);
  }

  #key(): Buffer {
    if (!this.#master) throw new CardholdError('key_provider_sealed');
    return this.#master;
  }

  async wrap(plaintextKey: Buffer, context: string): Promise<Buffer> {
    return seal(this.#key(), plaintextKey, Buffer.from(context));
  }

  async unwrap(wrappedKey: Buffer, context: string): Promise<Buffer> {
    return open(this.#key(), wrappedKey, Buffer.from(context));
  }

  async check(): Promise<void> {
    this.#key();
  }

  async close(): Promise<void> {
    this.seal();
  }
}
