import { createHash, randomBytes } from 'node:crypto';
import type { Sql } from 'postgres';
import { CardholdError } from '../shared/errors.ts';
import { Secret } from '../shared/secret.ts';
import { newId, randomBase62 } from '../vault/identifiers.ts';
import type { Scope } from './scopes.ts';

export interface ApiKeyPrincipal {
  keyId: string;
  merchantId: string;
  scopes: ReadonlySet<string>;
}

export interface IssuedApiKey {
  id: string;
  merchant_id: string;
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
  kind: string;
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

const KEY_PATTERN = /^sk_(test|live)_[0-9A-Za-z]{43}$/;

export async function issueApiKey(
  sql: Sql,
  merchantId: string,
  options: {
    environment: 'test' | 'live';
    scopes: Scope[];
    label?: string | undefined;
    expiresAt?: Date | null;
  },
): Promise<IssuedApiKey> {
  const secret = `sk_${options.environment}_${randomBase62(32)}`;
  const id = newId('key');
  const display = `${secret.slice(0, 8)}…${secret.slice(-4)}`;
  const rows = await sql<{ created_at: Date }[]>`
    insert into identity.api_keys (id, merchant_id, kind, secret_hash, display, scopes, label, expires_at)
    values (${id}, ${merchantId}, 'secret', ${hashApiKey(secret)}, ${display}, ${options.scopes},
      ${options.label ?? null}, ${options.expiresAt ?? null})
    returning created_at`;
  return {
    id,
    merchant_id: merchantId,
    display,
    scopes: options.scopes,
    label: options.label ?? null,
    created_at: (rows[0] as { created_at: Date }).created_at.toISOString(),
    expires_at: options.expiresAt ? options.expiresAt.toISOString() : null,
    secret: new Secret(secret),
  };
}

interface CachedPrincipal {
  principal: ApiKeyPrincipal;
  until: number;
}

/**
 * Verifies bearer API keys against identity.api_keys. Verified keys are cached briefly (configurable,
 * default 5 s) so authentication costs no query on the hot path; that interval bounds how late a
 * revocation takes effect. Unknown keys are never cached.
 */
export class ApiKeyVerifier {
  readonly #sql: Sql;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, CachedPrincipal>();

  constructor(sql: Sql, cacheSeconds: number) {
    this.#sql = sql;
    this.#cacheMs = cacheSeconds * 1000;
  }

  async verify(presented: string): Promise<ApiKeyPrincipal> {
    if (!KEY_PATTERN.test(presented)) throw new CardholdError('unauthenticated');
    const hash = hashApiKey(presented);
    const cacheKey = hash.toString('base64');
    const cached = this.#cache.get(cacheKey);
    if (cached && cached.until > Date.now()) return cached.principal;
    const rows = await this.#sql<{ id: string; merchant_id: string; scopes: string[] }[]>`
      select id, merchant_id, scopes from identity.api_keys
      where secret_hash = ${hash} and kind = 'secret' and revoked_at is null
        and (expires_at is null or expires_at > now())`;
    const row = rows[0];
    if (!row) {
      this.#cache.delete(cacheKey);
      throw new CardholdError('unauthenticated');
    }
    const principal = { keyId: row.id, merchantId: row.merchant_id, scopes: new Set(row.scopes) };
    if (this.#cacheMs > 0) {
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(cacheKey, { principal, until: Date.now() + this.#cacheMs });
    }
    return principal;
  }
}

export function newAdminToken(): string {
  return `adm_${randomBytes(32).toString('base64url')}`;
}
