import {
  type CryptoKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type JWTPayload,
  jwtVerify,
} from 'jose';
import { CardholdError } from '../shared/errors.ts';
import {
  cdePermissions,
  isOperatorRole,
  operatorRoles,
  type Permission,
  permissionsOf,
  platformPermissions,
  type RoleName,
  rolePermissions,
} from './permissions.ts';

/**
 * OIDC access tokens from an external identity provider (issue 4): a JWT verified against the
 * provider's JWKS, its groups mapped to cardhold roles, and its `amr` claim deciding whether the person
 * passed multi-factor authentication (PCI DSS 8.4.2). See docs/identity.md.
 */

export interface OidcVerifierOptions {
  /** Expected `iss`, exactly as the provider writes it. */
  issuer: string;
  /** Expected `aud` (one of the token's audiences): cardhold's API identifier at the provider. */
  audience: string;
  /** The provider's JWKS URL. HTTPS, except on a loopback address. Exactly one of jwksUri and jwks. */
  jwksUri?: string;
  /** Static keys, for tests or a provider whose keys are pinned in configuration. */
  jwks?: JSONWebKeySet;
  /** Accepted signing algorithms; asymmetric only. Default RS256, ES256, EdDSA. */
  algorithms?: string[];
  /** The claim holding the user's groups (a string array, or one string). Default `groups`. */
  roleClaim?: string;
  /** External group → cardhold role. Groups not listed here grant nothing. */
  roleMap: Record<string, RoleName>;
  /** `amr` values that count as multi-factor authentication. Default mfa, otp, hwk, swk. */
  mfaAmr?: string[];
  /** The claim naming the merchant a person acts for, if any. Default `cardhold_merchant`. */
  merchantClaim?: string;
  /** Expected `typ` header (e.g. `at+jwt`, RFC 9068), when the provider sets one. Not checked by default. */
  typ?: string;
  /** Allowed clock skew for exp and nbf. Default 30 s, at most 300 s. */
  clockToleranceSeconds?: number;
  /** Remote JWKS: how long one fetch may take. Default 5000 ms. */
  jwksTimeoutMs?: number;
  /** Remote JWKS: the least time between two fetches, so unknown key ids cannot hammer the provider. Default 30000 ms. */
  jwksCooldownMs?: number;
  /** Remote JWKS: how long fetched keys are used before they are fetched again. Default 600000 ms. */
  jwksCacheMaxAgeMs?: number;
  now?: () => Date;
}

export interface OidcPrincipal {
  subject: string;
  issuer: string;
  roles: RoleName[];
  permissions: Set<Permission>;
  /** True when `amr` holds one of the configured multi-factor values. */
  mfa: boolean;
  expiresAt: Date;
  merchantId: string | null;
}

/** Why a token was refused: fixed texts, used as the `unauthenticated` error's detail. */
export const oidcRefusal = {
  malformed: 'The bearer token is not a well-formed JWT',
  algorithm: 'The token is signed with an algorithm that is not allowed',
  missingKeyId: 'The token names no signing key (kid)',
  unknownKey: 'The token names a signing key the identity provider does not publish',
  signature: 'The token signature does not verify',
  expired: 'The token has expired',
  notYetValid: 'The token is not yet valid',
  issuer: 'The token was issued by another issuer',
  audience: 'The token is meant for another audience',
  type: 'The token is not of the expected type',
  missingClaim: 'The token lacks a required claim',
  invalidClaim: 'A token claim has the wrong form',
  keysUnavailable: "The identity provider's signing keys could not be fetched",
  noRole: 'The token maps to no cardhold role',
  merchant: 'The token names a merchant in the wrong form',
  merchantRole: 'The token confines a role that administers the whole platform to one merchant',
} as const;

export type OidcRefusalReason = keyof typeof oidcRefusal;

/** Signature algorithms that may be configured: asymmetric only, never `none` or an HMAC. */
const asymmetricAlgorithms: ReadonlySet<string> = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

const merchantIdPattern = /^mer_[0-9A-Za-z]{22}$/;
/** Far more than any provider's access token; a larger one is refused before it is parsed. */
const maxTokenLength = 16_384;
const maxSubjectLength = 255;

const refuse = (reason: OidcRefusalReason, cause?: unknown): CardholdError =>
  // The cause is a jose error: its message names claims, never their values. It is kept for
  // debugging and never returned to a client (toProblem serialises only code, title and detail).
  new CardholdError('unauthenticated', { detail: oidcRefusal[reason], cause });

const configError = (message: string): Error => new TypeError(`OIDC configuration: ${message}`);

function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

function positiveInteger(value: number | undefined, fallback: number, name: string, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw configError(`${name} must be an integer from 0 to ${max}`);
  }
  return value;
}

/** Maps a jose failure to the reason class a caller may see. */
function reasonOf(error: unknown): OidcRefusalReason {
  const code = (error as { code?: unknown } | null)?.code;
  const claim = (error as { claim?: unknown } | null)?.claim;
  const reason = (error as { reason?: unknown } | null)?.reason;
  switch (code) {
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'algorithm';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'unknownKey';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature';
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return 'keysUnavailable';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (reason === 'missing') return 'missingClaim';
      if (reason === 'invalid') return 'invalidClaim';
      if (claim === 'nbf') return 'notYetValid';
      if (claim === 'iss') return 'issuer';
      if (claim === 'aud') return 'audience';
      if (claim === 'typ') return 'type';
      return 'invalidClaim';
    case 'ERR_JOSE_GENERIC':
      // jose's remote key set: a non-200 answer or a body that is not JSON.
      return 'keysUnavailable';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JWK_INVALID':
      return 'malformed';
    default:
      // fetch itself failing (connection refused, DNS) surfaces as a plain TypeError.
      return error instanceof TypeError ? 'keysUnavailable' : 'malformed';
  }
}

function stringList(value: unknown): string[] | null {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value;
  return null;
}

type KeyResolver = (header: JWSHeaderParameters) => Promise<CryptoKey>;

export class OidcVerifier {
  readonly #issuer: string;
  readonly #audience: string;
  readonly #algorithms: string[];
  readonly #roleClaim: string;
  readonly #roleMap: ReadonlyMap<string, RoleName>;
  readonly #mfaAmr: ReadonlySet<string>;
  readonly #merchantClaim: string;
  readonly #typ: string | undefined;
  readonly #clockTolerance: number;
  readonly #now: () => Date;
  readonly #keys: KeyResolver;

  constructor(options: OidcVerifierOptions) {
    if (typeof options.issuer !== 'string' || options.issuer.length === 0) {
      throw configError('issuer is required');
    }
    if (typeof options.audience !== 'string' || options.audience.length === 0) {
      throw configError('audience is required');
    }
    this.#issuer = options.issuer;
    this.#audience = options.audience;

    const algorithms = options.algorithms ?? ['RS256', 'ES256', 'EdDSA'];
    if (algorithms.length === 0) throw configError('algorithms must list at least one algorithm');
    for (const alg of algorithms) {
      if (!asymmetricAlgorithms.has(alg)) {
        // Names only our own fixed list, so the message cannot echo anything odd from configuration.
        throw configError(
          `algorithms may list only asymmetric signature algorithms (${[...asymmetricAlgorithms].join(', ')}); never none or HS*`,
        );
      }
    }
    this.#algorithms = [...new Set(algorithms)];

    this.#roleClaim = options.roleClaim ?? 'groups';
    this.#merchantClaim = options.merchantClaim ?? 'cardhold_merchant';
    if (this.#roleClaim.length === 0) throw configError('roleClaim must not be empty');
    if (this.#merchantClaim.length === 0) throw configError('merchantClaim must not be empty');

    // A Map, not the object: a group called `__proto__` or `constructor` must not reach the prototype.
    const roleMap = new Map<string, RoleName>();
    for (const [group, role] of Object.entries(options.roleMap ?? {})) {
      if (!isOperatorRole(role)) {
        throw configError(
          `roleMap maps a group to a role that is not a person's (${operatorRoles.join(', ')})`,
        );
      }
      roleMap.set(group, role);
    }
    if (roleMap.size === 0) throw configError('roleMap must map at least one group');
    this.#roleMap = roleMap;

    const mfaAmr = options.mfaAmr ?? ['mfa', 'otp', 'hwk', 'swk'];
    if (mfaAmr.length === 0 || mfaAmr.some((value) => value.length === 0)) {
      throw configError('mfaAmr must list at least one non-empty amr value');
    }
    if (mfaAmr.includes('pwd')) throw configError('mfaAmr must not list pwd, a single factor');
    this.#mfaAmr = new Set(mfaAmr);

    this.#typ = options.typ;
    this.#clockTolerance = positiveInteger(options.clockToleranceSeconds, 30, 'clockToleranceSeconds', 300);
    this.#now = options.now ?? (() => new Date());

    if ((options.jwksUri === undefined) === (options.jwks === undefined)) {
      throw configError('exactly one of jwksUri and jwks is required');
    }
    if (options.jwks !== undefined) {
      this.#keys = createLocalJWKSet(options.jwks);
    } else {
      let url: URL;
      try {
        url = new URL(options.jwksUri!);
      } catch {
        throw configError('jwksUri is not a URL');
      }
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
        throw configError('jwksUri must use https (plain http only on a loopback address)');
      }
      if (url.username !== '' || url.password !== '') throw configError('jwksUri must not carry credentials');
      this.#keys = createRemoteJWKSet(url, {
        timeoutDuration: positiveInteger(options.jwksTimeoutMs, 5_000, 'jwksTimeoutMs', 60_000),
        cooldownDuration: positiveInteger(options.jwksCooldownMs, 30_000, 'jwksCooldownMs', 3_600_000),
        cacheMaxAge: positiveInteger(options.jwksCacheMaxAgeMs, 600_000, 'jwksCacheMaxAgeMs', 86_400_000),
      });
    }
  }

  /** Verifies an access token and maps it to a principal, or throws `unauthenticated`. */
  async verify(token: string): Promise<OidcPrincipal> {
    if (typeof token !== 'string' || token.length === 0 || token.length > maxTokenLength) {
      throw refuse('malformed');
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header: JWSHeaderParameters) => {
          // jose would pick the only key of the right type when kid is absent; we insist on a named key,
          // so a key the provider publishes for another purpose is never tried by accident.
          if (typeof header.kid !== 'string' || header.kid.length === 0) throw refuse('missingKeyId');
          return this.#keys(header);
        },
        {
          issuer: this.#issuer,
          audience: this.#audience,
          algorithms: this.#algorithms,
          clockTolerance: this.#clockTolerance,
          requiredClaims: ['exp', 'sub'],
          currentDate: this.#now(),
          ...(this.#typ === undefined ? {} : { typ: this.#typ }),
        },
      ));
    } catch (error) {
      if (error instanceof CardholdError) throw error;
      throw refuse(reasonOf(error), error);
    }

    const subject = payload.sub;
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > maxSubjectLength) {
      throw refuse('invalidClaim');
    }
    if (typeof payload.exp !== 'number') throw refuse('missingClaim');
    // When the person last authenticated decides whether a reveal needs them to sign in again: one in
    // the future would count as fresh for the token's whole life.
    const authTime = payload['auth_time'];
    if (
      authTime !== undefined &&
      (typeof authTime !== 'number' ||
        !Number.isFinite(authTime) ||
        authTime > this.#now().getTime() / 1000 + this.#clockTolerance)
    ) {
      throw refuse('invalidClaim');
    }

    const rawGroups = payload[this.#roleClaim];
    const groups = rawGroups === undefined ? [] : stringList(rawGroups);
    if (groups === null) throw refuse('invalidClaim');
    const roles = [
      ...new Set(groups.flatMap((group) => (this.#roleMap.has(group) ? [this.#roleMap.get(group)!] : []))),
    ].sort();
    if (roles.length === 0) throw refuse('noRole');

    const rawAmr = payload['amr'];
    const amr = rawAmr === undefined ? [] : Array.isArray(rawAmr) ? stringList(rawAmr) : null;
    if (amr === null) throw refuse('invalidClaim');
    const mfa = amr.some((value) => this.#mfaAmr.has(value));

    const rawMerchant = payload[this.#merchantClaim];
    let merchantId: string | null = null;
    if (rawMerchant !== undefined) {
      if (typeof rawMerchant !== 'string' || !merchantIdPattern.test(rawMerchant)) throw refuse('merchant');
      merchantId = rawMerchant;
      // As for operator accounts: a security administrator is never confined to a merchant, because
      // platform administration cannot be narrowed to one.
      if (roles.some((role) => rolePermissions[role].some((p) => platformPermissions.has(p)))) {
        throw refuse('merchantRole');
      }
    }

    return {
      subject,
      issuer: this.#issuer,
      roles,
      permissions: permissionsOf(roles),
      mfa,
      expiresAt: new Date(payload.exp * 1000),
      merchantId,
    };
  }
}

/**
 * A person acting with a cardholder-data permission must have passed multi-factor authentication
 * (PCI DSS 8.4.2). Call after the permission check itself; throws `mfa_required` otherwise.
 */
export function requireMfaFor(principal: Pick<OidcPrincipal, 'mfa'>, permission: Permission): void {
  if (cdePermissions.has(permission) && !principal.mfa) throw new CardholdError('mfa_required');
}
