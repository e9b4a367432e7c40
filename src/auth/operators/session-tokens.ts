import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { exportJWK, type JWK, jwtVerify, SignJWT } from 'jose';
import type { Sql } from 'postgres';
import type { KeyProvider } from '../../keys/key-provider.ts';
import { CardholdError } from '../../shared/errors.ts';
import { Secret } from '../../shared/secret.ts';
import { randomBase62 } from '../../vault/identifiers.ts';
import { type RoleName, roleNames } from '../permissions.ts';

export const SESSION_ISSUER = 'cardhold';
export const SESSION_AUDIENCE = 'cardhold-admin';
/** A session JWT lives 15 minutes; an active client refreshes it (and the idle clock) before then. */
export const SESSION_TOKEN_SECONDS = 15 * 60;
const ALGORITHM = 'EdDSA';
/** How long a replica trusts its copy of the key set before reading it again (for signing). */
const KEY_SET_MAX_AGE_MS = 60_000;
/**
 * On the api: when a token names a key this replica has not loaded, and a reload in the last 5 s did
 * not find one, it is refused without reading the key set again.
 */
const UNKNOWN_KID_RELOAD_MS = 5_000;

export type AuthenticationMethod = 'pwd' | 'otp';

/** What a session JWT says. */
export interface SessionClaims {
  /** The operator id. */
  sub: string;
  roles: RoleName[];
  merchantId: string | null;
  /** RFC 8176 authentication methods: `['pwd', 'otp']` after password and TOTP. */
  amr: AuthenticationMethod[];
  /** When the second factor was verified, or null. */
  mfaAt: Date | null;
  /** The server-side session (identity.operator_sessions), for idle timeout and revocation. */
  sid: string;
}

export interface VerifiedSessionToken extends SessionClaims {
  kid: string;
  issuedAt: Date;
  expiresAt: Date;
}

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

/** The context a session signing key is wrapped under (also used by the master rewrap job). */
export const sessionKeyContext = (kid: string, environment: string) =>
  `cardhold/operator-session-signing/v1|${kid}|${environment}`;

const invalid = (cause?: unknown) =>
  new CardholdError('session_invalid', cause === undefined ? {} : { cause });

/**
 * The public halves of the session-signing keys that verify (`identity.session_keys`, not retired, of
 * one key environment), and the one verification of a session JWT against them. The api's
 * `SessionTokens` and the vault's `SessionVerifier` both use it; it reads only the columns a public key
 * needs, never the wrapped private key.
 *
 * A token naming a key that is not loaded reads the set again (another replica may have rotated), unless
 * a read in the last `unknownKidReloadMs` already failed to find a key that way: a stream of made-up key
 * ids costs at most one read per interval, while a real rotation is picked up at once.
 */
export class SessionPublicKeys {
  readonly #sql: Sql;
  readonly #environment: string;
  readonly #unknownKidReloadMs: number;
  #keys = new Map<string, KeyObject>();
  #lastMiss = Number.NEGATIVE_INFINITY;
  #unknownKidReload: Promise<void> | undefined;

  constructor(sql: Sql, environment: string, unknownKidReloadMs: number) {
    this.#sql = sql;
    this.#environment = environment;
    this.#unknownKidReloadMs = unknownKidReloadMs;
  }

  /** Reads the keys that verify, in creation order. */
  async reload(): Promise<void> {
    const rows = await this.#sql<{ kid: string; public_key: Buffer; environment: string }[]>`
      select kid, public_key, environment from identity.session_keys where retired_at is null order by seq`;
    const keys = new Map<string, KeyObject>();
    for (const row of rows) {
      if (row.environment !== this.#environment) continue;
      keys.set(row.kid, createPublicKey({ key: row.public_key, format: 'der', type: 'spki' }));
    }
    this.#keys = keys;
  }

  /** The newest key that verifies (the one that signs), if any. */
  get newestKid(): string | undefined {
    return [...this.#keys.keys()].at(-1);
  }

  entries(): IterableIterator<[string, KeyObject]> {
    return this.#keys.entries();
  }

  add(kid: string, publicKey: KeyObject): void {
    this.#keys.set(kid, publicKey);
  }

  delete(kid: string): void {
    this.#keys.delete(kid);
  }

  clear(): void {
    this.#keys.clear();
  }

  /**
   * Verifies signature (EdDSA only, by a key that verifies), issuer, audience, lifetime and claim shapes,
   * at `now`. Anything wrong is `session_invalid`; the reason is never told to the caller.
   */
  async verify(token: string, now: Date): Promise<VerifiedSessionToken> {
    if (token.length > 4096) throw invalid();
    let verified: Awaited<ReturnType<typeof jwtVerify>>;
    try {
      verified = await jwtVerify(token, async (header) => this.#key(header.kid), {
        issuer: SESSION_ISSUER,
        audience: SESSION_AUDIENCE,
        algorithms: [ALGORITHM],
        typ: 'JWT',
        currentDate: now,
        clockTolerance: 5,
        requiredClaims: ['sub', 'iat', 'exp', 'sid', 'roles', 'amr'],
      });
    } catch (cause) {
      throw invalid(cause);
    }
    const { payload, protectedHeader } = verified;
    const roles = payload['roles'];
    const amr = payload['amr'];
    const sid = payload['sid'];
    const mfaAt = payload['mfa_at'];
    const merchantId = payload['merchant_id'];
    if (
      !Array.isArray(roles) ||
      !roles.every((r) => (roleNames as readonly unknown[]).includes(r)) ||
      !Array.isArray(amr) ||
      !amr.every((m) => m === 'pwd' || m === 'otp') ||
      typeof sid !== 'string' ||
      !(mfaAt === null || mfaAt === undefined || typeof mfaAt === 'number') ||
      !(merchantId === undefined || typeof merchantId === 'string') ||
      typeof payload.sub !== 'string' ||
      typeof payload.iat !== 'number' ||
      typeof payload.exp !== 'number'
    ) {
      throw invalid();
    }
    return {
      sub: payload.sub,
      roles: roles as RoleName[],
      merchantId: merchantId ?? null,
      amr: amr as AuthenticationMethod[],
      mfaAt: typeof mfaAt === 'number' ? new Date(mfaAt * 1000) : null,
      sid,
      kid: protectedHeader.kid as string,
      issuedAt: new Date(payload.iat * 1000),
      expiresAt: new Date(payload.exp * 1000),
    };
  }

  async #key(kid: string | undefined): Promise<KeyObject> {
    if (!kid) throw invalid();
    let key = this.#keys.get(kid);
    if (!key && Date.now() - this.#lastMiss >= this.#unknownKidReloadMs) {
      // Concurrent tokens with unknown key ids share one read.
      this.#unknownKidReload ??= this.reload().finally(() => {
        this.#unknownKidReload = undefined;
      });
      await this.#unknownKidReload;
      key = this.#keys.get(kid);
      if (!key) this.#lastMiss = Date.now();
    }
    if (!key) throw invalid();
    return key;
  }
}

/**
 * Ed25519-signed session JWTs (RFC 7519, `alg: EdDSA`) for operators. Private keys are stored only
 * wrapped by the key provider (identity.session_keys); only the newest active key is unwrapped, to
 * sign. `rotate()` adds a key that signs from then on, while older keys keep verifying until
 * `retire()`; `jwks()` publishes the public keys of the keys that verify.
 */
export class SessionTokens {
  readonly #sql: Sql;
  readonly #provider: KeyProvider;
  readonly #now: () => Date;
  readonly #public: SessionPublicKeys;
  #signing: SigningKey | undefined;
  #loadedAt = 0;

  private constructor(sql: Sql, provider: KeyProvider, now: () => Date) {
    this.#sql = sql;
    this.#provider = provider;
    this.#now = now;
    this.#public = new SessionPublicKeys(sql, provider.environment, UNKNOWN_KID_RELOAD_MS);
  }

  /**
   * Loads the active keys, creating the first on a fresh database; `created` names it, for the caller
   * to record.
   */
  static async open(
    sql: Sql,
    provider: KeyProvider,
    now: () => Date = () => new Date(),
  ): Promise<{ tokens: SessionTokens; created: string | undefined }> {
    const tokens = new SessionTokens(sql, provider, now);
    await tokens.reload();
    let created: string | undefined;
    if (!tokens.#signing) {
      // Two replicas starting at once on a fresh database may both create one; both keys are valid.
      created = await tokens.rotate();
    }
    return { tokens, created };
  }

  /** Reads the key set again: the newest active key signs, every active key verifies. */
  async reload(): Promise<void> {
    await this.#public.reload();
    const newest = this.#public.newestKid;
    if (newest && newest !== this.#signing?.kid) this.#signing = await this.#unwrap(newest);
    if (!newest) this.#signing = undefined;
    this.#loadedAt = Date.now();
  }

  async #unwrap(kid: string): Promise<SigningKey> {
    const rows = await this.#sql<{ wrapped_private_key: Buffer; environment: string }[]>`
      select wrapped_private_key, environment from identity.session_keys where kid = ${kid}`;
    const row = rows[0];
    if (!row) throw new CardholdError('key_provider_unavailable', { detail: 'No session signing key' });
    let der: Buffer;
    try {
      der = await this.#provider.unwrap(row.wrapped_private_key, sessionKeyContext(kid, row.environment));
    } catch (cause) {
      throw new CardholdError('key_provider_unavailable', { cause });
    }
    try {
      return { kid, privateKey: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }) };
    } finally {
      der.fill(0);
    }
  }

  /**
   * Creates a new signing key (on `db`, a transaction if the caller records it with the change) and
   * signs with it from now on. Returns its kid.
   */
  async rotate(db: Sql = this.#sql): Promise<string> {
    const kid = `osk_${randomBase62()}`;
    const pair = generateKeyPairSync('ed25519');
    const der = pair.privateKey.export({ format: 'der', type: 'pkcs8' });
    let wrapped: Buffer;
    try {
      wrapped = await this.#provider.wrap(der, sessionKeyContext(kid, this.#provider.environment));
    } catch (cause) {
      throw new CardholdError('key_provider_unavailable', { cause });
    } finally {
      der.fill(0);
    }
    await db`
      insert into identity.session_keys (kid, public_key, wrapped_private_key, provider, environment, created_at, master_version)
      values (${kid}, ${pair.publicKey.export({ format: 'der', type: 'spki' })}, ${wrapped},
        ${this.#provider.name}, ${this.#provider.environment}, ${this.#now()}, ${this.#provider.versionOf(wrapped)})`;
    this.#public.add(kid, pair.publicKey);
    this.#signing = { kid, privateKey: pair.privateKey };
    return kid;
  }

  /**
   * Retires a key: tokens it signed stop verifying (here at once; on other replicas at their next
   * session check, which reads `retired_at`). The signing key cannot be retired before a newer one
   * exists. Returns false for an unknown or already retired key.
   */
  async retire(kid: string, db: Sql = this.#sql): Promise<boolean> {
    if (this.#signing?.kid === kid) {
      throw new CardholdError('request_invalid', {
        field: 'kid',
        detail: 'The current signing key cannot be retired; rotate first',
      });
    }
    const rows = await db`
      update identity.session_keys set retired_at = ${this.#now()}
      where kid = ${kid} and retired_at is null returning kid`;
    this.#public.delete(kid);
    return rows.length > 0;
  }

  /** The kid that signs new tokens. */
  get signingKid(): string | undefined {
    return this.#signing?.kid;
  }

  /** Signs a session JWT valid for 15 minutes from the clock's now. */
  async sign(claims: SessionClaims): Promise<{ token: Secret<string>; expiresAt: Date; kid: string }> {
    if (Date.now() - this.#loadedAt > KEY_SET_MAX_AGE_MS) await this.reload();
    const key = this.#signing;
    if (!key) throw new CardholdError('key_provider_unavailable', { detail: 'No session signing key' });
    const issuedAt = Math.floor(this.#now().getTime() / 1000);
    const expiresAt = issuedAt + SESSION_TOKEN_SECONDS;
    const token = await new SignJWT({
      roles: claims.roles,
      amr: claims.amr,
      mfa_at: claims.mfaAt ? Math.floor(claims.mfaAt.getTime() / 1000) : null,
      sid: claims.sid,
      ...(claims.merchantId ? { merchant_id: claims.merchantId } : {}),
    })
      .setProtectedHeader({ alg: ALGORITHM, kid: key.kid, typ: 'JWT' })
      .setIssuer(SESSION_ISSUER)
      .setAudience(SESSION_AUDIENCE)
      .setSubject(claims.sub)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(key.privateKey);
    return { token: new Secret(token), expiresAt: new Date(expiresAt * 1000), kid: key.kid };
  }

  /**
   * Verifies signature (EdDSA only, by an active key), issuer, audience, lifetime and claim shapes.
   * Anything wrong is `session_invalid`; the reason is never told to the caller.
   */
  verify(token: string): Promise<VerifiedSessionToken> {
    return this.#public.verify(token, this.#now());
  }

  /** The public JWKS (RFC 7517) of every key that verifies: `kty`, `crv`, `x`, never `d`. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.reload();
    const keys: JWK[] = [];
    for (const [kid, publicKey] of this.#public.entries()) {
      const { kty, crv, x } = await exportJWK(publicKey);
      keys.push({ kty, crv, x, kid, alg: ALGORITHM, use: 'sig' } as JWK);
    }
    return { keys };
  }

  /** Drops the private key from memory (on shutdown). */
  forget(): void {
    this.#signing = undefined;
    this.#public.clear();
  }
}
