import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { CardholdError } from '../shared/errors.ts';
import { type KeyEnvironment, type KeyProvider, MASTER_REFRESH_MS } from './key-provider.ts';
import { refuseCurrentVersion } from './master-keyring.ts';

const MAGIC = Buffer.from('CHP1');
const IV_BYTES = 12;

export interface Pkcs11Options {
  library: string;
  tokenLabel?: string | undefined;
  slot?: number | undefined;
  pin: string;
  keyLabel: string;
  environment: KeyEnvironment;
}

/**
 * `pkcs11`: the master key is a non-extractable, sensitive AES-256 key inside an HSM, usable only to
 * encrypt and decrypt. Key-encrypting keys are wrapped with CKM_AES_GCM inside the HSM, their context
 * (and the environment) bound as AAD. Master key versions share a label and differ by CKA_ID (`v1`, `v2`,
 * …): the highest wraps, every version unwraps what it wrapped, named in the wrapped blob
 * (`CHP1 ‖ version ‖ iv ‖ ciphertext ‖ tag`). The library is initialised with CKF_OS_LOCKING_OK
 * (without it, parallel sessions crash SoftHSM2). Calls are synchronous on one logged-in session: each
 * wrap is an uninterrupted Init+Encrypt pair, and the key hierarchy caches what it unwraps, so no card
 * request reaches the HSM.
 */
export class Pkcs11KeyProvider implements KeyProvider {
  readonly name = 'pkcs11';
  readonly sealed = false;
  readonly environment: KeyEnvironment;
  readonly #module: pkcs11js.PKCS11;
  readonly #session: pkcs11js.Handle;
  readonly #keyLabel: string;
  #versions = new Map<number, pkcs11js.Handle>();
  #loadedAt = 0;
  #closed = false;

  private constructor(module: pkcs11js.PKCS11, session: pkcs11js.Handle, options: Pkcs11Options) {
    this.#module = module;
    this.#session = session;
    this.#keyLabel = options.keyLabel;
    this.environment = options.environment;
  }

  /** Logs in to the token; with `requireKey` (the default) refuses a token without the master key. */
  static async open(options: Pkcs11Options, requireKey = true): Promise<Pkcs11KeyProvider> {
    const module = new pkcs11js.PKCS11();
    module.load(options.library);
    try {
      module.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (error) {
      module.close();
      throw error;
    }
    try {
      const slot = findSlot(module, options);
      const session = module.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      module.C_Login(session, pkcs11js.CKU_USER, options.pin);
      const provider = new Pkcs11KeyProvider(module, session, options);
      provider.#loadVersions();
      if (requireKey && provider.#versions.size === 0) {
        throw new Error(
          `the token holds no master key labelled ${options.keyLabel}: run \`cardhold keys init-hsm\``,
        );
      }
      return provider;
    } catch (error) {
      module.C_Finalize();
      module.close();
      throw error;
    }
  }

  /** The master key versions on the token, oldest first. */
  get versions(): number[] {
    return [...this.#versions.keys()].sort((a, b) => a - b);
  }

  /**
   * Generates the next master key version inside the token: AES-256, sensitive, never extractable,
   * encrypt/decrypt only. Wrapping then moves to it; older versions keep unwrapping.
   */
  createMasterKey(): number {
    const version = Math.max(0, ...this.#versions.keys()) + 1;
    const handle = this.#module.C_GenerateKey(this.#session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_SIGN, value: false },
      { type: pkcs11js.CKA_VERIFY, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      { type: pkcs11js.CKA_LABEL, value: this.#keyLabel },
      { type: pkcs11js.CKA_ID, value: Buffer.from(`v${version}`) },
    ]);
    this.#versions.set(version, handle);
    return version;
  }

  /** The attributes that make the master key what it must be, read back from the token (for tests). */
  masterKeyAttributes(version: number): { sensitive: boolean; extractable: boolean; wrap: boolean } {
    const handle = this.#handle(version);
    const [sensitive, extractable, wrap] = this.#module.C_GetAttributeValue(this.#session, handle, [
      { type: pkcs11js.CKA_SENSITIVE },
      { type: pkcs11js.CKA_EXTRACTABLE },
      { type: pkcs11js.CKA_WRAP },
    ]);
    const flag = (a: pkcs11js.Attribute | undefined) => Boolean((a?.value as Buffer | undefined)?.[0]);
    return { sensitive: flag(sensitive), extractable: flag(extractable), wrap: flag(wrap) };
  }

  get masterVersion(): string {
    return String(Math.max(0, ...this.#versions.keys()));
  }

  versionOf(wrappedKey: Buffer): string {
    return String(wrappedKey.readUInt32BE(4));
  }

  masterVersions(): string[] {
    return this.versions.map(String);
  }

  async rotateMaster(): Promise<string> {
    this.#loadVersions();
    return String(this.createMasterKey());
  }

  /** Destroys the key object in the token: whatever that version wrapped can never be unwrapped again. */
  async destroyMasterVersion(version: string): Promise<boolean> {
    this.#loadVersions();
    refuseCurrentVersion(version, this.masterVersion);
    const handle = this.#handle(Number(version));
    this.#module.C_DestroyObject(this.#session, handle);
    this.#versions.delete(Number(version));
    return true;
  }

  async wrap(plaintextKey: Buffer, context: string): Promise<Buffer> {
    // A rotation made by another process (init-hsm --rotate) reaches this one within the refresh period.
    if (Date.now() - this.#loadedAt > MASTER_REFRESH_MS) this.#loadVersions();
    const version = Math.max(...this.#versions.keys());
    const handle = this.#handle(version);
    const iv = randomBytes(IV_BYTES);
    this.#module.C_EncryptInit(this.#session, this.#gcm(iv, context), handle);
    const out = this.#module.C_Encrypt(this.#session, plaintextKey, Buffer.alloc(plaintextKey.length + 16));
    const header = Buffer.alloc(8);
    MAGIC.copy(header);
    header.writeUInt32BE(version, 4);
    return Buffer.concat([header, iv, out]);
  }

  async unwrap(wrappedKey: Buffer, context: string): Promise<Buffer> {
    if (wrappedKey.length < 8 + IV_BYTES + 16 || !wrappedKey.subarray(0, 4).equals(MAGIC)) {
      throw new CardholdError('token_integrity_failed', { detail: 'Not a PKCS#11-wrapped key' });
    }
    const named = wrappedKey.readUInt32BE(4);
    if (!this.#versions.has(named)) this.#loadVersions();
    const handle = this.#handle(named);
    const iv = wrappedKey.subarray(8, 8 + IV_BYTES);
    const body = wrappedKey.subarray(8 + IV_BYTES);
    try {
      this.#module.C_DecryptInit(this.#session, this.#gcm(iv, context), handle);
      return Buffer.from(this.#module.C_Decrypt(this.#session, body, Buffer.alloc(body.length)));
    } catch (cause) {
      if ((cause as { code?: number }).code === pkcs11js.CKR_ENCRYPTED_DATA_INVALID) {
        throw new CardholdError('token_integrity_failed', { cause });
      }
      throw cause;
    }
  }

  async check(): Promise<void> {
    if (this.#closed) throw new CardholdError('key_provider_unavailable');
    this.#module.C_GetSessionInfo(this.#session);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#module.C_Logout(this.#session);
      this.#module.C_CloseSession(this.#session);
    } finally {
      this.#module.C_Finalize();
      this.#module.close();
    }
  }

  #gcm(iv: Buffer, context: string): pkcs11js.Mechanism {
    // The environment is in the AAD too: a key wrapped for one environment never opens in another.
    const parameter: pkcs11js.GcmParams = {
      type: pkcs11js.CK_PARAMS_AES_GCM,
      iv,
      ivBits: IV_BYTES * 8,
      aad: Buffer.from(`${this.environment}|${context}`),
      tagBits: 128,
    };
    return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
  }

  #handle(version: number): pkcs11js.Handle {
    if (this.#closed) throw new CardholdError('key_provider_unavailable');
    const handle = this.#versions.get(version);
    if (!handle)
      throw new CardholdError('key_provider_unavailable', { detail: `No master key version ${version}` });
    return handle;
  }

  #loadVersions(): void {
    if (this.#closed) throw new CardholdError('key_provider_unavailable');
    this.#versions.clear();
    this.#loadedAt = Date.now();
    this.#module.C_FindObjectsInit(this.#session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: this.#keyLabel },
    ]);
    const handles = this.#module.C_FindObjects(this.#session, 64);
    this.#module.C_FindObjectsFinal(this.#session);
    for (const handle of handles) {
      const [id] = this.#module.C_GetAttributeValue(this.#session, handle, [{ type: pkcs11js.CKA_ID }]);
      const match = /^v(\d+)$/.exec(String(id?.value ?? ''));
      if (match) this.#versions.set(Number(match[1]), handle);
    }
  }
}

function findSlot(module: pkcs11js.PKCS11, options: Pkcs11Options): pkcs11js.Handle {
  const slots = module.C_GetSlotList(true);
  for (const slot of slots) {
    if (options.tokenLabel !== undefined) {
      if (module.C_GetTokenInfo(slot).label.trim() === options.tokenLabel) return slot;
    } else if (options.slot !== undefined && slot.readUIntLE(0, Math.min(slot.length, 6)) === options.slot) {
      return slot;
    }
  }
  throw new Error('no PKCS#11 token matches CARDHOLD_PKCS11_TOKEN_LABEL / CARDHOLD_PKCS11_SLOT');
}
