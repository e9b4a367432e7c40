import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CardholdError } from '../shared/errors.ts';
import { open, seal } from './aes-gcm.ts';
import type { KeyProvider } from './key-provider.ts';

const LABEL = 'cardhold DEVELOPMENT-ONLY master key: never use for real card data';

interface MasterKeyFile {
  label: string;
  environment: 'development';
  created_at: string;
  key: string;
}

/**
 * Development key provider: a random master key in a 0600 file under the data directory, created on
 * first start. It is labelled development-only and the configuration refuses it in production mode.
 */
export class LocalKeyProvider implements KeyProvider {
  readonly name = 'local';
  readonly environment = 'development' as const;
  readonly sealed = false;
  readonly file: string;
  #master: Buffer | undefined;

  private constructor(file: string, master: Buffer) {
    this.file = file;
    this.#master = master;
  }

  static async open(dataDir: string): Promise<LocalKeyProvider> {
    const dir = path.join(dataDir, 'keys');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const file = path.join(dir, 'master.development.json');
    let master: Buffer;
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as MasterKeyFile;
      if (parsed.environment !== 'development') throw new Error('not a development key');
      master = Buffer.from(parsed.key, 'base64');
      if (master.length !== 32) throw new Error('wrong key length');
      const mode = (await stat(file)).mode & 0o777;
      if (mode & 0o077) await chmod(file, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`the development master key file ${file} is unreadable or corrupt`);
      }
      master = randomBytes(32);
      const content: MasterKeyFile = {
        label: LABEL,
        environment: 'development',
        created_at: new Date().toISOString(),
        key: master.toString('base64'),
      };
      // wx: never overwrite a key another process created meanwhile.
      await writeFile(file, JSON.stringify(content, null, 2) + '\n', { mode: 0o600, flag: 'wx' }).catch(
        async (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
          const again = JSON.parse(await readFile(file, 'utf8')) as MasterKeyFile;
          master = Buffer.from(again.key, 'base64');
        },
      );
    }
    return new LocalKeyProvider(file, master);
  }

  #key(): Buffer {
    if (!this.#master) throw new CardholdError('key_provider_unavailable');
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
    this.#master?.fill(0);
    this.#master = undefined;
  }
}
