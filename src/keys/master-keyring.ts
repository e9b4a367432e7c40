import { rename, writeFile } from 'node:fs/promises';
import { CardholdError } from '../shared/errors.ts';
import { open, seal } from './aes-gcm.ts';

const MAGIC = Buffer.from('CHM1');
const HEADER_BYTES = 8;

/**
 * The versioned AES-256 master keys of the file-based providers (`local`, `local-sealed`). The newest
 * version wraps. A blob wrapped by version 1 is a bare AES-256-GCM box (`iv ‖ tag ‖ ciphertext`, as
 * before master rotation existed); later versions prefix `CHM1 ‖ version (u32 BE)`. A version-1 box whose
 * random IV happens to begin with that header is still opened: the header is trusted only when it
 * names a version held here and that version's tag verifies, and version 1 is tried otherwise.
 */
export class MasterKeyring {
  readonly #keys = new Map<number, Buffer>();

  /** Takes ownership of `key` (zeroed when the version is removed). */
  add(version: number, key: Buffer): void {
    if (this.#keys.has(version)) {
      key.fill(0);
      return;
    }
    this.#keys.set(version, key);
  }

  remove(version: number): void {
    this.#keys.get(version)?.fill(0);
    this.#keys.delete(version);
  }

  clear(): void {
    for (const version of [...this.#keys.keys()]) this.remove(version);
  }

  has(version: number): boolean {
    return this.#keys.has(version);
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Held versions, oldest first. */
  versions(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  /** The version new wraps use (0 when empty). */
  get current(): number {
    return Math.max(0, ...this.#keys.keys());
  }

  wrap(plaintextKey: Buffer, context: string): Buffer {
    const version = this.current;
    const key = this.#keys.get(version);
    if (!key) throw new CardholdError('key_provider_unavailable');
    const box = seal(key, plaintextKey, Buffer.from(context));
    if (version === 1) return box;
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header);
    header.writeUInt32BE(version, 4);
    return Buffer.concat([header, box]);
  }

  /** The version a blob's header names (1 for a bare box), whether or not it is held here. */
  static headerVersion(wrapped: Buffer): number {
    if (wrapped.length > HEADER_BYTES && wrapped.subarray(0, 4).equals(MAGIC)) {
      const version = wrapped.readUInt32BE(4);
      if (version >= 2) return version;
    }
    return 1;
  }

  /** The version that wrapped a blob, as far as the versions held here tell. */
  versionOf(wrapped: Buffer): number {
    const named = MasterKeyring.headerVersion(wrapped);
    return this.#keys.has(named) ? named : 1;
  }

  unwrap(wrappedKey: Buffer, context: string): Buffer {
    const aad = Buffer.from(context);
    const named = MasterKeyring.headerVersion(wrappedKey);
    const key = this.#keys.get(named);
    if (named >= 2 && key) {
      try {
        return open(key, wrappedKey.subarray(HEADER_BYTES), aad);
      } catch (error) {
        if (!this.#keys.has(1)) throw error;
      }
    }
    const first = this.#keys.get(1);
    if (!first) {
      throw new CardholdError('key_provider_unavailable', {
        detail: `No master key version ${named} is held here`,
      });
    }
    return open(first, wrappedKey, aad);
  }
}

/** Master rotation never destroys the version that wraps new keys. */
export function refuseCurrentVersion(version: string, current: string): void {
  if (version === current) {
    throw new CardholdError('key_version_in_use', { detail: 'The current master key version wraps' });
  }
}

/** Replaces a key file atomically (a reader sees the old or the new file, never half of one), 0600. */
export async function writeJsonAtomically(file: string, content: unknown): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}
