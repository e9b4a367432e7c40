import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CardholdError } from '../shared/errors.ts';
import { type KeyProvider, MASTER_REFRESH_MS } from './key-provider.ts';
import { MasterKeyring, refuseCurrentVersion, writeJsonAtomically } from './master-keyring.ts';

const LABEL = 'cardhold DEVELOPMENT-ONLY master key: never use for real card data';

interface MasterKeyVersion {
  version: number;
  created_at: string;
  key: string;
}

/**
 * The file: `key` is version 1 as first written (before master rotation existed); after a rotation the
 * file lists every version in `keys` instead, and a retired version is simply gone from it.
 */
interface MasterKeyFile {
  label: string;
  environment: 'development';
  created_at: string;
  key?: string;
  keys?: MasterKeyVersion[];
}

function versionsOf(file: MasterKeyFile): MasterKeyVersion[] {
  if (file.environment !== 'development') throw new Error('not a development key');
  const versions =
    file.keys ?? (file.key ? [{ version: 1, created_at: file.created_at, key: file.key }] : []);
  for (const v of versions) {
    if (!Number.isInteger(v.version) || v.version < 1 || Buffer.from(v.key, 'base64').length !== 32) {
      throw new Error('wrong key version or length');
    }
  }
  if (versions.length === 0) throw new Error('no key');
  return versions;
}

/**
 * Development key provider: a random master key in a 0600 file under the data directory, created on
 * first start. It is labelled development-only and the configuration refuses it in production mode.
 * `rotateMaster` adds a version to the file; every process re-reads the file when it meets a version
 * it does not hold, and at most every 30 seconds before wrapping.
 */
export class LocalKeyProvider implements KeyProvider {
  readonly name = 'local';
  readonly environment = 'development' as const;
  readonly sealed = false;
  readonly file: string;
  readonly #keys = new MasterKeyring();
  #readAt = 0;
  #closed = false;

  private constructor(file: string) {
    this.file = file;
  }

  static async open(dataDir: string): Promise<LocalKeyProvider> {
    const dir = path.join(dataDir, 'keys');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const file = path.join(dir, 'master.development.json');
    try {
      await readFile(file, 'utf8');
      const mode = (await stat(file)).mode & 0o777;
      if (mode & 0o077) await chmod(file, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const content: MasterKeyFile = {
        label: LABEL,
        environment: 'development',
        created_at: new Date().toISOString(),
        key: randomBytes(32).toString('base64'),
      };
      // wx: never overwrite a key another process created meanwhile.
      await writeFile(file, JSON.stringify(content, null, 2) + '\n', { mode: 0o600, flag: 'wx' }).catch(
        (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        },
      );
    }
    const provider = new LocalKeyProvider(file);
    await provider.#reload();
    return provider;
  }

  async #readFile(): Promise<MasterKeyFile> {
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as MasterKeyFile;
      versionsOf(parsed);
      return parsed;
    } catch {
      throw new Error(`the development master key file ${this.file} is unreadable or corrupt`);
    }
  }

  /** Takes the versions in the file: new ones are added, retired ones dropped (and zeroed). */
  async #reload(): Promise<void> {
    const versions = versionsOf(await this.#readFile());
    const listed = new Set(versions.map((v) => v.version));
    for (const held of this.#keys.versions()) if (!listed.has(held)) this.#keys.remove(held);
    for (const v of versions) {
      if (!this.#keys.has(v.version)) this.#keys.add(v.version, Buffer.from(v.key, 'base64'));
    }
    this.#readAt = Date.now();
  }

  #live(): MasterKeyring {
    if (this.#closed || this.#keys.size === 0) throw new CardholdError('key_provider_unavailable');
    return this.#keys;
  }

  get masterVersion(): string {
    return String(this.#keys.current);
  }

  versionOf(wrappedKey: Buffer): string {
    return String(this.#keys.versionOf(wrappedKey));
  }

  masterVersions(): string[] {
    return this.#keys.versions().map(String);
  }

  async wrap(plaintextKey: Buffer, context: string): Promise<Buffer> {
    if (Date.now() - this.#readAt > MASTER_REFRESH_MS) await this.#reload();
    return this.#live().wrap(plaintextKey, context);
  }

  async unwrap(wrappedKey: Buffer, context: string): Promise<Buffer> {
    if (!this.#keys.has(MasterKeyring.headerVersion(wrappedKey))) await this.#reload();
    return this.#live().unwrap(wrappedKey, context);
  }

  async rotateMaster(): Promise<string> {
    await this.#reload();
    const file = await this.#readFile();
    const versions = versionsOf(file);
    const version = Math.max(...versions.map((v) => v.version)) + 1;
    const material = randomBytes(32);
    versions.push({ version, created_at: new Date().toISOString(), key: material.toString('base64') });
    await this.#write({ ...file, key: undefined, keys: versions });
    this.#keys.add(version, material);
    return String(version);
  }

  async destroyMasterVersion(version: string): Promise<boolean> {
    await this.#reload();
    refuseCurrentVersion(version, this.masterVersion);
    const file = await this.#readFile();
    const remaining = versionsOf(file).filter((v) => String(v.version) !== version);
    await this.#write({ ...file, key: undefined, keys: remaining });
    this.#keys.remove(Number(version));
    return true;
  }

  async #write(content: MasterKeyFile): Promise<void> {
    await writeJsonAtomically(this.file, content);
    this.#readAt = Date.now();
  }

  async check(): Promise<void> {
    this.#live();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#keys.clear();
  }
}
