import { hkdfSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { combine, split } from 'shamir-secret-sharing';
import { CardholdError } from '../shared/errors.ts';
import { open, seal } from './aes-gcm.ts';
import {
  type KeyEnvironment,
  MASTER_REFRESH_MS,
  type SealableKeyProvider,
  type SealStatus,
} from './key-provider.ts';
import { formatShare, type KeyShare, parseShare } from './key-share.ts';
import { MasterKeyring, refuseCurrentVersion, writeJsonAtomically } from './master-keyring.ts';

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
  /** Version 1, sealed at the ceremony; empty once version 1 is retired. */
  sealed_master: string;
  /** Versions 2 and later (master rotation), sealed under the same unseal key: the same shares open them. */
  versions?: Array<{ version: number; created_at: string; sealed: string }>;
}

/** Each later version's AAD adds its number, so versions cannot be swapped in the file. */
const versionAad = (f: SealedKeyFile, version: number) =>
  version === 1 ? headerAad(f) : Buffer.concat([headerAad(f), Buffer.from(`|v${version}`)]);

/** Every sealed version in the file, oldest first. */
function sealedVersions(f: SealedKeyFile): Array<{ version: number; sealed: Buffer }> {
  const all = f.sealed_master ? [{ version: 1, sealed: Buffer.from(f.sealed_master, 'base64') }] : [];
  for (const v of f.versions ?? []) all.push({ version: v.version, sealed: Buffer.from(v.sealed, 'base64') });
  return all;
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
  #header: SealedKeyFile;
  readonly #keys = new MasterKeyring();
  /** Held while unsealed, so that versions added by a rotation elsewhere open without the shares. */
  #unsealKey: Buffer | undefined;
  #readAt = 0;
  #pending: KeyShare[] = [];
  #combining = false;
  /** Counts seals, so that an unseal under way can tell it was overtaken by one. */
  #seals = 0;
  #unsealed = Promise.withResolvers<void>();
  readonly #listeners: Array<(sealed: boolean) => void> = [];

  private constructor(file: string, header: SealedKeyFile) {
    this.file = file;
    this.#header = header;
    this.environment = header.environment;
  }

  /** Opens the sealed key file; refuses a key of another environment than the one this vault runs in. */
  static async open(file: string, environment: KeyEnvironment): Promise<LocalSealedKeyProvider> {
    const parsed = await readSealedFile(file);
    if (parsed.environment !== environment) {
      throw new CardholdError('key_environment_mismatch', {
        detail: `The sealed master key is a ${parsed.environment} key and this vault runs in ${environment} mode`,
      });
    }
    return new LocalSealedKeyProvider(file, parsed);
  }

  get sealed(): boolean {
    return this.#unsealKey === undefined;
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
    // A seal that arrives while the shares are combined wins: the combination is thrown away.
    const seals = this.#seals;
    let secret: Uint8Array | undefined;
    let key: Buffer | undefined;
    try {
      const plain = shares.map((s) => new Uint8Array(s.bytes));
      secret = await combine(plain).finally(() => {
        for (const p of plain) p.fill(0);
      });
      key = unsealKey(secret, this.#header.seal_id);
      // The file may have gained versions (a rotation) since this process opened it.
      const latest = await readSealedFile(this.file).catch(() => this.#header);
      if (latest.seal_id === this.#header.seal_id) this.#header = latest;
      try {
        this.#openVersions(key, this.#header);
      } catch {
        this.#keys.clear();
        throw new CardholdError('key_shares_mismatch', { field: 'share' });
      }
      if (this.#seals !== seals) {
        this.#keys.clear();
        throw new CardholdError('key_provider_sealed', {
          detail: 'The vault was sealed while the shares were being combined; unseal again',
        });
      }
      this.#unsealKey = key;
      key = undefined;
      this.#readAt = Date.now();
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

  /** Opens every version in the file that is not held yet; drops held versions no longer in it. */
  #openVersions(key: Buffer, file: SealedKeyFile): void {
    const listed = sealedVersions(file);
    if (listed.length === 0) throw new Error('the sealed key file holds no master key version');
    const numbers = new Set(listed.map((v) => v.version));
    for (const held of this.#keys.versions()) if (!numbers.has(held)) this.#keys.remove(held);
    for (const v of listed) {
      if (!this.#keys.has(v.version))
        this.#keys.add(v.version, open(key, v.sealed, versionAad(file, v.version)));
    }
  }

  /** Reads the file again (a rotation or retirement by another process) while unsealed. */
  async #reload(): Promise<void> {
    const key = this.#unsealKey;
    if (!key) throw new CardholdError('key_provider_sealed');
    const file = await readSealedFile(this.file);
    if (file.seal_id !== this.#header.seal_id) throw new Error('the sealed key file now holds another seal');
    this.#openVersions(key, file);
    this.#header = file;
    this.#readAt = Date.now();
  }

  seal(): boolean {
    this.#seals++;
    for (const s of this.#pending) s.bytes.fill(0);
    this.#pending = [];
    const wasUnsealed = !this.sealed;
    if (wasUnsealed) {
      this.#unsealKey?.fill(0);
      this.#unsealKey = undefined;
      this.#keys.clear();
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

  #live(): MasterKeyring {
    if (this.sealed) throw new CardholdError('key_provider_sealed');
    return this.#keys;
  }

  /** While sealed, the newest version named in the file (what will wrap once unsealed). */
  get masterVersion(): string {
    return String(
      this.sealed ? Math.max(...sealedVersions(this.#header).map((v) => v.version)) : this.#keys.current,
    );
  }

  versionOf(wrappedKey: Buffer): string {
    return String(this.#keys.versionOf(wrappedKey));
  }

  masterVersions(): string[] {
    return sealedVersions(this.#header).map((v) => String(v.version));
  }

  async wrap(plaintextKey: Buffer, context: string): Promise<Buffer> {
    if (!this.sealed && Date.now() - this.#readAt > MASTER_REFRESH_MS) await this.#reload();
    return this.#live().wrap(plaintextKey, context);
  }

  async unwrap(wrappedKey: Buffer, context: string): Promise<Buffer> {
    if (!this.sealed && !this.#keys.has(MasterKeyring.headerVersion(wrappedKey))) await this.#reload();
    return this.#live().unwrap(wrappedKey, context);
  }

  /**
   * A new master version, sealed under the same unseal key: the custodians keep their shares. Needs the
   * provider unsealed, that is the custodians' quorum in this process (`keys rotate --purpose master`).
   */
  async rotateMaster(): Promise<string> {
    await this.#reload();
    const key = this.#unsealKey as Buffer;
    const file = this.#header;
    const version = Math.max(...sealedVersions(file).map((v) => v.version)) + 1;
    const material = randomBytes(32);
    const sealed = seal(key, material, versionAad(file, version)).toString('base64');
    const next: SealedKeyFile = {
      ...file,
      versions: [...(file.versions ?? []), { version, created_at: new Date().toISOString(), sealed }],
    };
    await writeJsonAtomically(this.file, next);
    this.#header = next;
    this.#keys.add(version, material);
    return String(version);
  }

  async destroyMasterVersion(version: string): Promise<boolean> {
    await this.#reload();
    refuseCurrentVersion(version, this.masterVersion);
    const file = this.#header;
    const next: SealedKeyFile = {
      ...file,
      sealed_master: version === '1' ? '' : file.sealed_master,
      versions: (file.versions ?? []).filter((v) => String(v.version) !== version),
    };
    await writeJsonAtomically(this.file, next);
    this.#header = next;
    this.#keys.remove(Number(version));
    return true;
  }

  async check(): Promise<void> {
    this.#live();
  }

  async close(): Promise<void> {
    this.seal();
  }
}

async function readSealedFile(file: string): Promise<SealedKeyFile> {
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
  return parsed;
}
