import type { Sql } from 'postgres';
import { CardholdError } from '../shared/errors.ts';
import { newId } from '../vault/identifiers.ts';
import { type ApiKeyView, type IssuedApiKey, issueApiKey } from './api-keys.ts';
import { defaultSecretKeyScopes, type Scope } from './scopes.ts';

export interface MerchantView {
  id: string;
  name: string;
  environment: 'test' | 'live';
  created_at: string;
}

interface MerchantRow {
  id: string;
  name: string;
  environment: 'test' | 'live';
  created_at: Date;
}

interface KeyRow {
  id: string;
  merchant_id: string;
  kind: string;
  display: string;
  scopes: string[];
  label: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const merchantView = (r: MerchantRow): MerchantView => ({
  id: r.id,
  name: r.name,
  environment: r.environment,
  created_at: r.created_at.toISOString(),
});
const keyView = (r: KeyRow): ApiKeyView => ({
  ...r,
  created_at: r.created_at.toISOString(),
  expires_at: iso(r.expires_at),
  revoked_at: iso(r.revoked_at),
  last_used_at: iso(r.last_used_at),
});

/** Merchants and their API keys, owned by the api role (identity schema). */
export class Merchants {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  /** Creates a merchant and its first secret key in one transaction: never a merchant without a key. */
  async create(
    name: string,
    environment: 'test' | 'live',
    options: { demo?: boolean } = {},
  ): Promise<{ merchant: MerchantView; apiKey: IssuedApiKey }> {
    return this.#sql.begin(async (tx) => {
      const rows = await tx<MerchantRow[]>`
        insert into identity.merchants (id, name, environment, is_demo)
        values (${newId('mer')}, ${name}, ${environment}, ${options.demo ?? false})
        returning id, name, environment, created_at`;
      const merchant = merchantView(rows[0] as MerchantRow);
      const apiKey = await issueApiKey(tx as unknown as Sql, merchant.id, {
        environment,
        scopes: defaultSecretKeyScopes,
        label: 'initial key',
      });
      return { merchant, apiKey };
    });
  }

  async get(id: string): Promise<MerchantView> {
    const rows = await this.#sql<
      MerchantRow[]
    >`select id, name, environment, created_at from identity.merchants where id = ${id}`;
    if (!rows[0]) throw new CardholdError('merchant_not_found');
    return merchantView(rows[0]);
  }

  async issueKey(
    merchantId: string,
    options: { scopes?: Scope[] | undefined; label?: string | undefined; expiresAt?: Date | undefined },
  ): Promise<IssuedApiKey> {
    const merchant = await this.get(merchantId);
    return issueApiKey(this.#sql, merchantId, {
      environment: merchant.environment,
      scopes: options.scopes ?? defaultSecretKeyScopes,
      label: options.label,
      expiresAt: options.expiresAt ?? null,
    });
  }

  async listKeys(merchantId: string): Promise<ApiKeyView[]> {
    await this.get(merchantId);
    const rows = await this.#sql<KeyRow[]>`
      select id, merchant_id, kind, display, scopes, label, created_at, expires_at, revoked_at, last_used_at
      from identity.api_keys where merchant_id = ${merchantId} order by created_at`;
    return rows.map(keyView);
  }

  async revokeKey(merchantId: string, keyId: string): Promise<ApiKeyView> {
    const rows = await this.#sql<KeyRow[]>`
      update identity.api_keys set revoked_at = coalesce(revoked_at, now())
      where merchant_id = ${merchantId} and id = ${keyId}
      returning id, merchant_id, kind, display, scopes, label, created_at, expires_at, revoked_at, last_used_at`;
    if (!rows[0]) throw new CardholdError('api_key_not_found');
    return keyView(rows[0]);
  }

  /**
   * The development demo merchant: created once, and given a fresh key on every start (older demo keys
   * are revoked), because a key is shown only once and its secret is not stored.
   */
  async demo(): Promise<{ merchant: MerchantView; apiKey: IssuedApiKey }> {
    const existing = await this.#sql<MerchantRow[]>`
      select id, name, environment, created_at from identity.merchants where is_demo order by created_at limit 1`;
    if (!existing[0]) return this.create('Demo merchant', 'test', { demo: true });
    const merchant = merchantView(existing[0]);
    await this
      .#sql`update identity.api_keys set revoked_at = now() where merchant_id = ${merchant.id} and revoked_at is null`;
    const apiKey = await issueApiKey(this.#sql, merchant.id, {
      environment: 'test',
      scopes: defaultSecretKeyScopes,
      label: 'demo key',
    });
    return { merchant, apiKey };
  }
}
