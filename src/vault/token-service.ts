import { createHmac } from 'node:crypto';
import type { Sql } from 'postgres';
import { openRecord, sealRecord } from '../keys/envelope.ts';
import type { KeyHierarchy, VersionedKey } from '../keys/key-hierarchy.ts';
import { CardholdError, type FieldError, isCardholdError } from '../shared/errors.ts';
import { Secret } from '../shared/secret.ts';
import { cvvLengthOf } from './card-brands.ts';
import { type ValidCard, validateCard, validateCvv } from './card-validation.ts';
import type { CvvSlotOptions, CvvSlots, CvvSlotView } from './cvv-slots.ts';
import { formatPreservingAlias, newId } from './identifiers.ts';

export const BATCH_LIMIT = 100;
const MAX_TOKEN_LIFETIME_MS = 20 * 366 * 24 * 3600 * 1000;

export interface TokenizeRequest {
  pan: Secret<string>;
  expMonth: number;
  expYear: number;
  holderName?: string | undefined;
  cvv?: Secret<string> | undefined;
  cvvOptions?: CvvSlotOptions | undefined;
  dedup?: boolean | undefined;
  expiresAt?: string | undefined;
  formatPreservingAlias?: boolean | undefined;
}

export interface TokenView {
  id: string;
  alias: string | null;
  brand: string;
  bin: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  fingerprint: string;
  created_at: string;
  expires_at: string | null;
}

export interface TokenizeResult {
  token: TokenView;
  deduplicated: boolean;
  cvv_slot: CvvSlotView | null;
}

export type BatchItemResult =
  | { index: number; status: 'created'; result: TokenizeResult }
  | {
      index: number;
      status: 'failed';
      error: { code: string; title: string; detail: string; field?: string };
    };

export interface RevealedCard {
  pan: Secret<string>;
  holderName: string | undefined;
  expMonth: number;
  expYear: number;
  brand: string;
}

export interface ListQuery {
  fingerprint?: string | undefined;
  last4?: string | undefined;
  limit: number;
  startingAfter?: string | undefined;
}

interface TokenRow {
  id: string;
  alias: string | null;
  brand: string;
  bin: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  fingerprint: Buffer;
  created_at: Date;
  expires_at: Date | null;
}

/** A validated card with everything derived from it, ready to be stored. */
interface PreparedCard {
  merchantId: string;
  request: TokenizeRequest;
  card: ValidCard;
  fingerprint: Buffer;
  pan: VersionedKey;
  expiresAt: Date | null;
  cvvOptions: CvvSlotOptions | undefined;
}

const viewColumns = 'id, alias, brand, bin, last4, exp_month, exp_year, fingerprint, created_at, expires_at';

/**
 * Tokenization and token lifecycle inside the vault. Every statement is scoped by merchant, and
 * plaintext card data exists only between validation and encryption (and, for reveal, in a Secret).
 */
export class TokenService {
  readonly #sql: Sql;
  readonly #keys: KeyHierarchy;
  readonly #cvv: CvvSlots;
  readonly #now: () => Date;

  constructor(deps: { sql: Sql; keys: KeyHierarchy; cvvSlots: CvvSlots; now?: () => Date }) {
    this.#sql = deps.sql;
    this.#keys = deps.keys;
    this.#cvv = deps.cvvSlots;
    this.#now = deps.now ?? (() => new Date());
  }

  async tokenize(merchantId: string, request: TokenizeRequest, path = ''): Promise<TokenizeResult> {
    const field = (name: string) => (path ? `${path}.${name}` : name);
    const now = this.#now();
    const card = validateCard(request, now, path);
    if (request.cvv) validateCvv(request.cvv, card.cvvLength, field('cvv'));
    const cvvOptions = request.cvv
      ? this.#cvv.resolveOptions(request.cvvOptions, field('cvv_options'))
      : undefined;
    const expiresAt = parseTokenExpiry(request.expiresAt, now, field('expires_at'));

    const fingerprint = await this.#fingerprint(merchantId, card.pan);
    const pan = await this.#keys.active(merchantId, 'pan');

    // A random alias can collide with one this merchant already has (same BIN and last four); such an
    // attempt rolls back whole and is retried with a fresh alias.
    const prepared: PreparedCard = { merchantId, request, card, fingerprint, pan, expiresAt, cvvOptions };
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#store(prepared);
      } catch (error) {
        const aliasClash =
          (error as { constraint_name?: string }).constraint_name === 'tokens_merchant_id_alias_key';
        if (!aliasClash || attempt >= 5) throw error;
      }
    }
  }

  async #store(prepared: PreparedCard): Promise<TokenizeResult> {
    const { merchantId, request, fingerprint, cvvOptions } = prepared;
    // Only dedup needs a transaction (for its advisory lock); a plain tokenize is one INSERT.
    if (!request.dedup) return this.#insert(this.#sql, prepared);
    return this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      // Serialise dedup per merchant and card so two concurrent requests cannot both insert.
      await db`select pg_advisory_xact_lock(hashtextextended(${merchantId + ':' + fingerprint.toString('hex')}, 0))`;
      const existing = await db<TokenRow[]>`
        select ${db.unsafe(viewColumns)} from vault.tokens
        where merchant_id = ${merchantId} and fingerprint = ${fingerprint}
          and (expires_at is null or expires_at > now())
        order by created_at limit 1`;
      const found = existing[0];
      if (found) {
        const slot = request.cvv
          ? await this.#cvv.create(merchantId, found.id, request.cvv, cvvOptions)
          : null;
        return { token: toView(found), deduplicated: true, cvv_slot: slot };
      }
      return this.#insert(db, prepared);
    });
  }

  async #insert(db: Sql, prepared: PreparedCard): Promise<TokenizeResult> {
    const { merchantId, request, card, fingerprint, pan, expiresAt, cvvOptions } = prepared;
    const id = newId('tok');
    const alias = request.formatPreservingAlias ? formatPreservingAlias(card.pan.expose()) : null;
    const payload = Buffer.from(
      JSON.stringify({ pan: card.pan.expose(), name: card.holderName ?? null }),
      'utf8',
    );
    let sealed: ReturnType<typeof sealRecord>;
    try {
      sealed = sealRecord(pan.key, payload, panAad(merchantId, id, pan.version));
    } finally {
      payload.fill(0);
    }
    // The CVV slot is created before the row is written; if the insert then fails the slot is destroyed,
    // and if the slot cannot be created nothing is written: never one without the other.
    const slot = request.cvv ? await this.#cvv.create(merchantId, id, request.cvv, cvvOptions) : null;
    try {
      const rows = await db<TokenRow[]>`
        insert into vault.tokens (id, merchant_id, alias, fingerprint, ciphertext, wrapped_dek, kek_version,
          brand, bin, last4, pan_length, exp_month, exp_year, expires_at)
        values (${id}, ${merchantId}, ${alias}, ${fingerprint}, ${sealed.ciphertext}, ${sealed.wrappedDataKey},
          ${pan.version}, ${card.brand}, ${card.bin}, ${card.last4}, ${card.panLength}, ${card.expMonth},
          ${card.expYear}, ${expiresAt})
        returning ${db.unsafe(viewColumns)}`;
      return { token: toView(rows[0] as TokenRow), deduplicated: false, cvv_slot: slot };
    } catch (error) {
      if (slot) await this.#cvv.destroy(merchantId, slot.id).catch(() => undefined);
      throw error;
    }
  }

  /** A new CVV for an existing token, e.g. a returning customer confirming their card. */
  async addCvv(
    merchantId: string,
    tokenId: string,
    cvv: Secret<string>,
    options: CvvSlotOptions,
  ): Promise<CvvSlotView> {
    const rows = await this.#sql<{ brand: string }[]>`
      select brand from vault.tokens
      where merchant_id = ${merchantId} and id = ${tokenId} and (expires_at is null or expires_at > now())`;
    const row = rows[0];
    if (!row) throw new CardholdError('token_not_found');
    validateCvv(cvv, cvvLengthOf(row.brand), 'cvv');
    const resolved = this.#cvv.resolveOptions(options, '');
    return this.#cvv.create(merchantId, tokenId, cvv, resolved);
  }

  /** Each item succeeds or fails on its own; a failed item writes nothing. */
  async tokenizeBatch(merchantId: string, items: TokenizeRequest[]): Promise<BatchItemResult[]> {
    if (items.length > BATCH_LIMIT) {
      throw new CardholdError('batch_too_large', {
        field: 'cards',
        detail: `A batch holds at most ${BATCH_LIMIT} cards`,
      });
    }
    const results: BatchItemResult[] = [];
    for (const [index, item] of items.entries()) {
      try {
        results.push({
          index,
          status: 'created',
          result: await this.tokenize(merchantId, item, `cards[${index}]`),
        });
      } catch (error) {
        // Only input errors are per-item; infrastructure failures abort the batch (fail closed).
        if (!isCardholdError(error) || error.status >= 500) throw error;
        results.push({
          index,
          status: 'failed',
          error: {
            code: error.code,
            title: error.message,
            detail: error.detail,
            ...(error.field ? { field: error.field } : {}),
          },
        });
      }
    }
    return results;
  }

  async get(merchantId: string, idOrAlias: string): Promise<TokenView> {
    const rows = await this.#sql<TokenRow[]>`
      select ${this.#sql.unsafe(viewColumns)} from vault.tokens
      where merchant_id = ${merchantId} and ${idOrAlias.startsWith('tok_') ? this.#sql`id` : this.#sql`alias`} = ${idOrAlias}
        and (expires_at is null or expires_at > now())`;
    const row = rows[0];
    if (!row) throw new CardholdError('token_not_found');
    return toView(row);
  }

  /**
   * Deletes the row and with it the only copy of the wrapped data key: the ciphertext can never be
   * opened again (crypto-shredding), whatever copies of it a backup may hold.
   */
  async delete(merchantId: string, tokenId: string): Promise<void> {
    const rows = await this
      .#sql`delete from vault.tokens where merchant_id = ${merchantId} and id = ${tokenId} returning id`;
    if (rows.length === 0) throw new CardholdError('token_not_found');
  }

  async list(merchantId: string, query: ListQuery): Promise<{ data: TokenView[]; has_more: boolean }> {
    const sql = this.#sql;
    const fingerprint = query.fingerprint ? parseFingerprint(query.fingerprint) : undefined;
    let cursor: { created_at: Date; id: string } | undefined;
    if (query.startingAfter) {
      const rows = await sql<{ created_at: Date; id: string }[]>`
        select created_at, id from vault.tokens where merchant_id = ${merchantId} and id = ${query.startingAfter}`;
      cursor = rows[0];
      if (!cursor) throw new CardholdError('token_not_found', { field: 'starting_after' });
    }
    const rows = await sql<TokenRow[]>`
      select ${sql.unsafe(viewColumns)} from vault.tokens
      where merchant_id = ${merchantId}
        and (expires_at is null or expires_at > now())
        ${fingerprint ? sql`and fingerprint = ${fingerprint}` : sql``}
        ${query.last4 ? sql`and last4 = ${query.last4}` : sql``}
        ${cursor ? sql`and (created_at, id) < (${cursor.created_at}, ${cursor.id})` : sql``}
      order by created_at desc, id desc
      limit ${query.limit + 1}`;
    return { data: rows.slice(0, query.limit).map(toView), has_more: rows.length > query.limit };
  }

  /** Decrypts a token's card for the vault's own use (the forward proxy); callers never log the result. */
  async reveal(merchantId: string, tokenId: string): Promise<RevealedCard> {
    const rows = await this.#sql<
      {
        ciphertext: Buffer;
        wrapped_dek: Buffer;
        kek_version: number;
        exp_month: number;
        exp_year: number;
        brand: string;
      }[]
    >`
      select ciphertext, wrapped_dek, kek_version, exp_month, exp_year, brand from vault.tokens
      where merchant_id = ${merchantId} and id = ${tokenId} and (expires_at is null or expires_at > now())`;
    const row = rows[0];
    if (!row) throw new CardholdError('token_not_found');
    const kek = await this.#keys.version(merchantId, 'pan', row.kek_version);
    const plain = openRecord(
      kek,
      { ciphertext: row.ciphertext, wrappedDataKey: row.wrapped_dek },
      panAad(merchantId, tokenId, row.kek_version),
    );
    try {
      const parsed = JSON.parse(plain.toString('utf8')) as { pan: string; name: string | null };
      return {
        pan: new Secret(parsed.pan),
        holderName: parsed.name ?? undefined,
        expMonth: row.exp_month,
        expYear: row.exp_year,
        brand: row.brand,
      };
    } finally {
      plain.fill(0);
    }
  }

  /** Retention: deletes tokens past their expiry (and so crypto-shreds them). */
  async purgeExpired(): Promise<number> {
    const rows = await this.#sql`delete from vault.tokens where expires_at <= now() returning id`;
    return rows.length;
  }

  async #fingerprint(merchantId: string, pan: Secret<string>): Promise<Buffer> {
    const { key } = await this.#keys.active(merchantId, 'fingerprint');
    return createHmac('sha256', key).update(pan.expose()).digest();
  }
}

function panAad(merchantId: string, tokenId: string, version: number): Buffer {
  return Buffer.from(`cardhold/pan/v1|${merchantId}|${tokenId}|${version}`);
}

function toView(row: TokenRow): TokenView {
  return {
    id: row.id,
    alias: row.alias,
    brand: row.brand,
    bin: row.bin,
    last4: row.last4,
    exp_month: row.exp_month,
    exp_year: row.exp_year,
    fingerprint: `fp_${row.fingerprint.toString('base64url')}`,
    created_at: row.created_at.toISOString(),
    expires_at: row.expires_at ? row.expires_at.toISOString() : null,
  };
}

function parseFingerprint(value: string): Buffer {
  const bytes = /^fp_[A-Za-z0-9_-]{43}$/.test(value) ? Buffer.from(value.slice(3), 'base64url') : undefined;
  if (bytes?.length !== 32) {
    throw new CardholdError('request_invalid', {
      field: 'fingerprint',
      detail: 'A fingerprint looks like fp_ and 43 characters',
    });
  }
  return bytes;
}

function parseTokenExpiry(value: string | undefined, now: Date, field: string): Date | null {
  if (value === undefined) return null;
  const at = new Date(value);
  if (
    Number.isNaN(at.getTime()) ||
    at.getTime() <= now.getTime() ||
    at.getTime() - now.getTime() > MAX_TOKEN_LIFETIME_MS
  ) {
    throw new CardholdError('token_expiry_invalid', {
      field,
      detail: 'expires_at must be a date-time in the future, at most 20 years ahead',
    });
  }
  return at;
}

export type { FieldError };
