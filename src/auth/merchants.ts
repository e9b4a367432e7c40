import type { Sql } from 'postgres';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { type AccessContext, type AuditEvent, accessEvent } from '../audit/events.ts';
import { CardholdError } from '../shared/errors.ts';
import { newId } from '../vault/identifiers.ts';
import { type ApiKeyKind, type ApiKeyView, type IssuedApiKey, issueApiKey } from './api-keys.ts';
import { defaultSecretKeyScopes, publishableKeyScopes, type Scope } from './scopes.ts';

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
  kind: ApiKeyKind;
  allowed_origins: string[];
  rotated_to: string | null;
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

/** Who performs an administrative action, and from where. */
export type AdminContext = Omit<AccessContext, 'merchantId'>;

/**
 * Merchants and their API keys, owned by the api role (identity schema). Every change commits in one
 * transaction with its audit records (PCI DSS 10.2.1.2, 10.2.1.5, 10.2.1.7); every read is recorded.
 */
export class Merchants {
  readonly #sql: Sql;
  readonly #trail: AuditTrail;

  constructor(sql: Sql, trail: AuditTrail) {
    this.#sql = sql;
    this.#trail = trail;
  }

  #event(
    ctx: AdminContext,
    action: AuditEvent['action'],
    resource: AuditEvent['resource'],
    merchantId: string | null,
    details?: AuditEvent['details'],
  ): AuditEvent {
    return accessEvent(ctx, action, resource, merchantId, { details });
  }

  /** Creates a merchant and its first secret key in one transaction: never a merchant without a key. */
  async create(
    ctx: AdminContext,
    name: string,
    environment: 'test' | 'live',
    options: { demo?: boolean } = {},
  ): Promise<{ merchant: MerchantView; apiKey: IssuedApiKey }> {
    return this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const rows = await db<MerchantRow[]>`
          insert into identity.merchants (id, name, environment, is_demo)
          values (${newId('mer')}, ${name}, ${environment}, ${options.demo ?? false})
          returning id, name, environment, created_at`;
        const merchant = merchantView(rows[0] as MerchantRow);
        const apiKey = await issueApiKey(db, merchant.id, {
          environment,
          scopes: defaultSecretKeyScopes,
          label: options.demo ? 'demo key' : 'initial key',
        });
        await audit.insert(db, [
          this.#event(ctx, 'merchant.create', { type: 'merchant', id: merchant.id }, merchant.id, {
            environment,
          }),
          this.#keyEvent(ctx, apiKey),
        ]);
        return { merchant, apiKey };
      }),
    );
  }

  #keyEvent(ctx: AdminContext, key: IssuedApiKey): AuditEvent {
    return this.#event(ctx, 'api_key.create', { type: 'api_key', id: key.id }, key.merchant_id, {
      scopes: key.scopes.join(' '),
    });
  }

  async #find(id: string): Promise<MerchantView | undefined> {
    const rows = await this.#sql<
      MerchantRow[]
    >`select id, name, environment, created_at from identity.merchants where id = ${id}`;
    return rows[0] ? merchantView(rows[0]) : undefined;
  }

  /** A read, recorded whether it found the merchant or not. */
  async get(ctx: AdminContext, id: string): Promise<MerchantView> {
    const merchant = await this.#find(id);
    await this.#trail.record({
      ...this.#event(ctx, 'merchant.read', { type: 'merchant', id }, merchant ? id : null),
      ...(merchant ? {} : { outcome: 'failure' as const, reason: 'merchant_not_found' }),
    });
    if (!merchant) throw new CardholdError('merchant_not_found');
    return merchant;
  }

  async issueKey(
    ctx: AdminContext,
    merchantId: string,
    options: {
      kind?: ApiKeyKind;
      scopes?: Scope[] | undefined;
      allowedOrigins?: string[] | undefined;
      label?: string | undefined;
      expiresAt?: Date | undefined;
    },
  ): Promise<IssuedApiKey> {
    const merchant = await this.#find(merchantId);
    if (!merchant) throw new CardholdError('merchant_not_found');
    const kind = options.kind ?? 'secret';
    return this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const key = await issueApiKey(db, merchantId, {
          environment: merchant.environment,
          kind,
          scopes: options.scopes ?? (kind === 'secret' ? defaultSecretKeyScopes : [...publishableKeyScopes]),
          allowedOrigins: options.allowedOrigins ?? [],
          label: options.label,
          expiresAt: options.expiresAt ?? null,
        });
        await audit.insert(db, [this.#keyEvent(ctx, key)]);
        return key;
      }),
    );
  }

  /**
   * Issues the key's successor (same kind, scopes, origins, label) and lets the old key work until the
   * overlap ends; both changes and their records commit together.
   */
  async rotateKey(
    ctx: AdminContext,
    merchantId: string,
    keyId: string,
    overlapSeconds: number,
  ): Promise<IssuedApiKey> {
    const merchant = await this.#find(merchantId);
    if (!merchant) throw new CardholdError('merchant_not_found');
    return this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const rows = await db<KeyRow[]>`
          select id, merchant_id, kind, allowed_origins, rotated_to, display, scopes, label, created_at,
            expires_at, revoked_at, last_used_at
          from identity.api_keys
          where merchant_id = ${merchantId} and id = ${keyId} and revoked_at is null and rotated_to is null
            and (expires_at is null or expires_at > now())
          for update`;
        const old = rows[0];
        if (!old) throw new CardholdError('api_key_not_found');
        const successor = await issueApiKey(db, merchantId, {
          environment: merchant.environment,
          kind: old.kind as ApiKeyKind,
          scopes: old.scopes as Scope[],
          allowedOrigins: old.allowed_origins,
          label: old.label ?? undefined,
          expiresAt: old.expires_at,
        });
        await db`
          update identity.api_keys
          set rotated_to = ${successor.id},
            expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => ${overlapSeconds}))
          where id = ${keyId}`;
        await audit.insert(db, [
          this.#keyEvent(ctx, successor),
          this.#event(ctx, 'api_key.rotate', { type: 'api_key', id: keyId }, merchantId, {
            successor: successor.id,
            overlap_seconds: overlapSeconds,
          }),
        ]);
        return successor;
      }),
    );
  }

  async listKeys(ctx: AdminContext, merchantId: string): Promise<ApiKeyView[]> {
    if (!(await this.#find(merchantId))) throw new CardholdError('merchant_not_found');
    const rows = await this.#sql<KeyRow[]>`
      select id, merchant_id, kind, allowed_origins, rotated_to, display, scopes, label, created_at, expires_at, revoked_at, last_used_at
      from identity.api_keys where merchant_id = ${merchantId} order by created_at`;
    await this.#trail.record(
      this.#event(ctx, 'api_key.read', { type: 'merchant', id: merchantId }, merchantId, {
        count: rows.length,
      }),
    );
    return rows.map(keyView);
  }

  async revokeKey(ctx: AdminContext, merchantId: string, keyId: string): Promise<ApiKeyView> {
    const row = await this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const rows = await db<KeyRow[]>`
          update identity.api_keys set revoked_at = coalesce(revoked_at, now())
          where merchant_id = ${merchantId} and id = ${keyId}
          returning id, merchant_id, kind, allowed_origins, rotated_to, display, scopes, label, created_at, expires_at, revoked_at, last_used_at`;
        if (rows[0]) {
          await audit.insert(db, [
            this.#event(ctx, 'api_key.revoke', { type: 'api_key', id: keyId }, merchantId),
          ]);
        }
        return rows[0];
      }),
    );
    if (!row) throw new CardholdError('api_key_not_found');
    return keyView(row);
  }

  /**
   * The development demo merchant: created once, and given a fresh key on every start (older demo keys
   * are revoked), because a key is shown only once and its secret is not stored.
   */
  async demo(ctx: AdminContext): Promise<{ merchant: MerchantView; apiKey: IssuedApiKey }> {
    const existing = await this.#sql<MerchantRow[]>`
      select id, name, environment, created_at from identity.merchants where is_demo order by created_at limit 1`;
    if (!existing[0]) return this.create(ctx, 'Demo merchant', 'test', { demo: true });
    const merchant = merchantView(existing[0]);
    const apiKey = await this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const revoked = await db<{ id: string }[]>`
          update identity.api_keys set revoked_at = now()
          where merchant_id = ${merchant.id} and revoked_at is null returning id`;
        const key = await issueApiKey(db, merchant.id, {
          environment: 'test',
          scopes: defaultSecretKeyScopes,
          label: 'demo key',
        });
        await audit.insert(db, [
          ...revoked.map((r) =>
            this.#event(ctx, 'api_key.revoke', { type: 'api_key', id: r.id }, merchant.id),
          ),
          this.#keyEvent(ctx, key),
        ]);
        return key;
      }),
    );
    return { merchant, apiKey };
  }
}
