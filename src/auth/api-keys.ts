import { createHash, randomBytes } from 'node:crypto';
import type { Sql } from 'postgres';
import { CardholdError } from '../shared/errors.ts';
import { Secret } from '../shared/secret.ts';
import { newId, randomBase62 } from '../vault/identifiers.ts';
import { type Permission, rolePermissions } from './permissions.ts';
import type { Principal } from './principal.ts';
import { publishableKeyScopes, type Scope, secretKeyScopes } from './scopes.ts';

export type ApiKeyKind = 'secret' | 'publishable';

export interface IssuedApiKey {
  id: string;
  merchant_id: string;
  kind: ApiKeyKind;
  allowed_origins: string[];
  display: string;
  scopes: string[];
  label: string | null;
  created_at: string;
  expires_at: string | null;
  /** Shown once, at creation; only its hash is stored. */
  secret: Secret<string>;
}

export interface ApiKeyView {
  id: string;
  merchant_id: string;
  kind: ApiKeyKind;
  allowed_origins: string[];
  rotated_to: string | null;
  display: string;
  scopes: string[];
  label: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** API keys carry 256 random bits, so a single SHA-256 is a sound verifier (no stretching needed). */
export function hashApiKey(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

const KEY_PATTERN = /^(sk|pk)_(test|live)_[0-9A-Za-z]{43}$/;

/**
 * An origin a publishable key works from, and that may frame the card fields. It must be written as
 * browsers send it (scheme and host in lower case, no default port, no path), or it could never match;
 * and a checkout page served over plain http could be rewritten by anyone on its network path (an
 * overlay over the fields), so http is for a developer's own machine only.
 */
function checkAllowedOrigin(origin: string): void {
  let url: URL | undefined;
  try {
    url = new URL(origin);
  } catch {
    url = undefined;
  }
  const loopback = url !== undefined && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  const refuse = (detail: string) =>
    new CardholdError('request_invalid', { field: 'allowed_origins', detail });
  if (!url || url.origin !== origin) {
    throw refuse(
      'An allowed origin is a scheme and host as browsers send it: https://shop.example, lower case, no path or default port',
    );
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw refuse('An allowed origin is https (http only for localhost, 127.0.0.1 or [::1])');
  }
}

export async function issueApiKey(
  sql: Sql,
  merchantId: string,
  options: {
    environment: 'test' | 'live';
    kind?: ApiKeyKind;
    scopes: Scope[];
    label?: string | undefined;
    expiresAt?: Date | null;
    allowedOrigins?: string[];
  },
): Promise<IssuedApiKey> {
  const kind = options.kind ?? 'secret';
  const allowed = kind === 'secret' ? secretKeyScopes : publishableKeyScopes;
  const outside = options.scopes.find((scope) => !allowed.includes(scope));
  if (outside) {
    throw new CardholdError('request_invalid', {
      field: 'scopes',
      detail: `A ${kind} key cannot hold ${outside}`,
    });
  }
  const allowedOrigins = kind === 'publishable' ? (options.allowedOrigins ?? []) : [];
  if (kind === 'publishable' && allowedOrigins.length === 0) {
    throw new CardholdError('request_invalid', {
      field: 'allowed_origins',
      detail: 'A publishable key needs at least one allowed origin',
    });
  }
  for (const origin of allowedOrigins) checkAllowedOrigin(origin);
  const secret = `${kind === 'secret' ? 'sk' : 'pk'}_${options.environment}_${randomBase62(32)}`;
  const id = newId('key');
  const display = `${secret.slice(0, 8)}…${secret.slice(-4)}`;
  const rows = await sql<{ created_at: Date }[]>`
    insert into identity.api_keys (id, merchant_id, kind, secret_hash, display, scopes, label, expires_at,
      allowed_origins)
    values (${id}, ${merchantId}, ${kind}, ${hashApiKey(secret)}, ${display}, ${options.scopes},
      ${options.label ?? null}, ${options.expiresAt ?? null}, ${allowedOrigins})
    returning created_at`;
  return {
    id,
    merchant_id: merchantId,
    kind,
    allowed_origins: allowedOrigins,
    display,
    scopes: options.scopes,
    label: options.label ?? null,
    created_at: (rows[0] as { created_at: Date }).created_at.toISOString(),
    expires_at: options.expiresAt ? options.expiresAt.toISOString() : null,
    secret: new Secret(secret),
  };
}

interface CachedPrincipal {
  principal: Principal;
  until: number;
}

interface KeyRow {
  id: string;
  merchant_id: string;
  kind: ApiKeyKind;
  scopes: string[];
  allowed_origins: string[];
  expires_at: Date | null;
}

/**
 * Verifies bearer API keys against identity.api_keys and records when each was last used. Verified
 * keys are cached briefly (configurable, default 5 s, never past the key's own expiry) so that
 * authentication costs no query on the hot path; that interval bounds how late a revocation takes
 * effect. Unknown keys are never cached.
 */
export class ApiKeyVerifier {
  readonly #sql: Sql;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, CachedPrincipal>();

  constructor(sql: Sql, cacheSeconds: number) {
    this.#sql = sql;
    this.#cacheMs = cacheSeconds * 1000;
  }

  static looksLikeKey(presented: string): boolean {
    return KEY_PATTERN.test(presented);
  }

  async verify(presented: string): Promise<Principal> {
    if (!KEY_PATTERN.test(presented)) throw new CardholdError('unauthenticated');
    const hash = hashApiKey(presented);
    const cacheKey = hash.toString('base64');
    const cached = this.#cache.get(cacheKey);
    if (cached && cached.until > Date.now()) return cached.principal;
    const rows = await this.#sql<KeyRow[]>`
      update identity.api_keys set last_used_at = now()
      where secret_hash = ${hash} and revoked_at is null and (expires_at is null or expires_at > now())
      returning id, merchant_id, kind, scopes, allowed_origins, expires_at`;
    const row = rows[0];
    if (!row) {
      this.#cache.delete(cacheKey);
      throw new CardholdError('unauthenticated');
    }
    const role = row.kind === 'secret' ? 'merchant-secret' : 'merchant-publishable';
    const granted = new Set(rolePermissions[role]);
    const principal: Principal = {
      kind: 'merchant_key',
      id: row.id,
      merchantId: row.merchant_id,
      roles: [role],
      permissions: new Set(row.scopes.filter((s): s is Permission => granted.has(s as Permission))),
      mfaAt: null,
      ...(row.kind === 'publishable' ? { allowedOrigins: row.allowed_origins } : {}),
    };
    if (this.#cacheMs > 0) {
      if (this.#cache.size > 10_000) this.#cache.clear();
      const until = Math.min(
        Date.now() + this.#cacheMs,
        row.expires_at?.getTime() ?? Number.POSITIVE_INFINITY,
      );
      this.#cache.set(cacheKey, { principal, until });
    }
    return principal;
  }
}

export function newAdminToken(): string {
  return `adm_${randomBytes(32).toString('base64url')}`;
}
