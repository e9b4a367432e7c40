import type { Sql } from 'postgres';
import type { AuditTrail, LaneWriter } from '../audit/audit-trail.ts';
import { type AccessContext, type AuditEvent, accessEvent } from '../audit/events.ts';
import { openRecord, sealRecord } from '../keys/envelope.ts';
import type { KeyHierarchy, VersionedKey } from '../keys/key-hierarchy.ts';
import { CardholdError, type FieldError, isCardholdError } from '../shared/errors.ts';
import { NaturalBatcher, type Settled } from '../shared/natural-batcher.ts';
import { Secret } from '../shared/secret.ts';
import { cvvLengthOf } from './card-brands.ts';
import { fingerprintOf, panAad } from './card-record.ts';
import { type ValidCard, validateCard, validateCvv } from './card-validation.ts';
import type { CvvSlotOptions, CvvSlots, CvvSlotView } from './cvv-slots.ts';
import { formatPreservingAlias, newId } from './identifiers.ts';
import type { MerchantFreezes } from './merchant-freezes.ts';

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

/** A token looked up by id or alias, within one merchant. */
interface TokenKey {
  merchantId: string;
  key: string;
}

/** An access to one token by id, with who asks and why (for its audit record). */
interface TokenRead {
  ctx: AccessContext;
  id: string;
  action: 'token.read' | 'token.reveal' | 'token.forward';
  details?: Record<string, string> | undefined;
}

/** What opening a token needs from its row. */
interface SealedRow {
  id: string;
  merchant_id: string;
  ciphertext: Buffer;
  wrapped_dek: Buffer;
  kek_version: number;
  aad_version: number;
  exp_month: number;
  exp_year: number;
  brand: string;
}

const sealedColumns =
  'id, merchant_id, ciphertext, wrapped_dek, kek_version, aad_version, exp_month, exp_year, brand';

interface TokenRow {
  id: string;
  merchant_id?: string;
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
  ctx: AccessContext;
  merchantId: string;
  request: TokenizeRequest;
  card: ValidCard;
  fingerprint: Buffer;
  fingerprintVersion: number;
  /** The card's fingerprint under every fingerprint key that still decrypts (dedup during a re-fingerprint). */
  knownFingerprints: Buffer[];
  pan: VersionedKey;
  expiresAt: Date | null;
  cvvOptions: CvvSlotOptions | undefined;
}

/**
 * Batched tokenizes and batched reads each keep one statement in flight per process: whatever arrives
 * meanwhile leaves together in the next one, so under load every statement and commit is shared by many
 * requests. Measured in bench/vault.bench.ts (docs/benchmarks.md): one in flight beat two and eight on
 * both throughput and p99, since PostgreSQL's per-statement and per-commit work is what two cores run
 * short of; a quiet system still sends each request at once.
 */
const STATEMENTS_IN_FLIGHT = 1;

const viewColumns =
  'id, merchant_id, alias, brand, bin, last4, exp_month, exp_year, fingerprint, created_at, expires_at';

/**
 * Tokenization and token lifecycle inside the vault. Every statement is scoped by merchant, and
 * plaintext card data exists only between validation and encryption (and, for reveal, in a Secret).
 */
export class TokenService {
  readonly #sql: Sql;
  readonly #keys: KeyHierarchy;
  readonly #cvv: CvvSlots;
  readonly #trail: AuditTrail;
  readonly #now: () => Date;
  readonly #freezes: MerchantFreezes | undefined;
  readonly #inserts: NaturalBatcher<PreparedCard, TokenizeResult>;
  /** Reads by alias. */
  readonly #lookups: NaturalBatcher<TokenKey, TokenRow | undefined>;
  readonly #reads: NaturalBatcher<TokenRead, TokenRow>;
  readonly #opens: NaturalBatcher<TokenRead, SealedRow>;

  constructor(deps: {
    sql: Sql;
    keys: KeyHierarchy;
    cvvSlots: CvvSlots;
    trail: AuditTrail;
    now?: () => Date;
    /** Refuses card data of frozen merchants (incident response); absent in tools that run the lifecycle. */
    freezes?: MerchantFreezes;
  }) {
    this.#freezes = deps.freezes;
    this.#sql = deps.sql;
    this.#keys = deps.keys;
    this.#cvv = deps.cvvSlots;
    this.#trail = deps.trail;
    this.#now = deps.now ?? (() => new Date());
    this.#inserts = new NaturalBatcher({
      run: (items: PreparedCard[]) => this.#insertBatch(items),
      concurrency: STATEMENTS_IN_FLIGHT,
      maxBatch: 50,
    });
    this.#lookups = new NaturalBatcher({
      run: (keys: TokenKey[]) => this.#lookupBatch(keys),
      concurrency: deps.trail.lanes,
      maxBatch: 100,
    });
    this.#reads = new NaturalBatcher({
      run: (reads: TokenRead[]) => this.#recordedSelect<TokenRow>(reads, viewColumns),
      concurrency: STATEMENTS_IN_FLIGHT,
      maxBatch: 100,
    });
    this.#opens = new NaturalBatcher({
      run: (reads: TokenRead[]) => this.#recordedSelect<SealedRow>(reads, sealedColumns),
      concurrency: STATEMENTS_IN_FLIGHT,
      maxBatch: 100,
    });
  }

  /** An audit event about one of this merchant's tokens (or its CVV slot). */
  #event(
    ctx: AccessContext,
    action: AuditEvent['action'],
    resource: AuditEvent['resource'],
    failure?: string,
    details?: AuditEvent['details'],
  ): AuditEvent {
    return accessEvent(ctx, action, resource, ctx.merchantId, { failure, details });
  }

  /** Records a failed access (not found, integrity) and rethrows it; other errors pass untouched. */
  async #failed(
    ctx: AccessContext,
    action: AuditEvent['action'],
    resource: AuditEvent['resource'],
    error: unknown,
  ): Promise<never> {
    const refused = isCardholdError(error) && error.status < 500 && error.status !== 422;
    if (refused || (isCardholdError(error) && error.code === 'token_integrity_failed')) {
      await this.#trail.record(this.#event(ctx, action, resource, error.code));
    }
    throw error;
  }

  async tokenize(ctx: AccessContext, request: TokenizeRequest, path = ''): Promise<TokenizeResult> {
    const { merchantId } = ctx;
    const field = (name: string) => (path ? `${path}.${name}` : name);
    const now = this.#now();
    const card = validateCard(request, now, path);
    if (request.cvv) validateCvv(request.cvv, card.cvvLength, field('cvv'));
    const cvvOptions = request.cvv
      ? this.#cvv.resolveOptions(request.cvvOptions, field('cvv_options'))
      : undefined;
    const expiresAt = parseTokenExpiry(request.expiresAt, now, field('expires_at'));

    await this.#notFrozen(ctx, 'token.create', { type: 'token', id: '-' });
    const fingerprints = (await this.#keys.readable(merchantId, 'fingerprint')).map(({ version, key }) => ({
      version,
      value: fingerprintOf(key, card.pan),
    }));
    const newest = fingerprints[0];
    if (!newest) throw new CardholdError('key_provider_unavailable', { detail: 'No fingerprint key' });
    const fingerprint = newest.value;
    const pan = await this.#keys.active(merchantId, 'pan');
    // Loaded (or created, which is itself audited) before a lane is held, so that nothing waits for a
    // second lane while holding one.
    if (request.cvv) await this.#keys.active(merchantId, 'cvv');

    // A random alias can collide with one this merchant already has (same BIN and last four); such an
    // attempt rolls back whole and is retried with a fresh alias.
    const prepared: PreparedCard = {
      ctx,
      merchantId,
      request,
      card,
      fingerprint,
      fingerprintVersion: newest.version,
      knownFingerprints: fingerprints.map((f) => f.value),
      pan,
      expiresAt,
      cvvOptions,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        if (!request.dedup) return await this.#inserts.submit(prepared);
        return await this.#trail.withLane((audit) => this.#store(prepared, audit));
      } catch (error) {
        const aliasClash =
          (error as { constraint_name?: string }).constraint_name === 'tokens_merchant_id_alias_key';
        if (!aliasClash || attempt >= 5) throw error;
      }
    }
  }

  /**
   * The token row and its audit records commit together: a plain tokenize is one statement (the audit
   * INSERT in a CTE), dedup a transaction (for its advisory lock).
   */
  async #store(prepared: PreparedCard, audit: LaneWriter): Promise<TokenizeResult> {
    const { ctx, merchantId, request, fingerprint, knownFingerprints, cvvOptions } = prepared;
    return this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      // Serialise dedup per merchant and card so two concurrent requests cannot both insert.
      await db`select pg_advisory_xact_lock(hashtextextended(${merchantId + ':' + fingerprint.toString('hex')}, 0))`;
      const existing = await db<TokenRow[]>`
        select ${db.unsafe(viewColumns)} from vault.tokens
        where merchant_id = ${merchantId}
          and (${knownFingerprints.slice(1).reduce((any, f) => db`${any} or fingerprint = ${f}`, db`fingerprint = ${fingerprint}`)})
          and (expires_at is null or expires_at > now())
        order by created_at limit 1`;
      const found = existing[0];
      if (found) {
        const slot = request.cvv
          ? await this.#cvv.create(merchantId, found.id, request.cvv, cvvOptions)
          : null;
        try {
          await audit.insert(db, [
            this.#event(ctx, 'token.create', { type: 'token', id: found.id }, undefined, {
              deduplicated: true,
            }),
            ...(slot ? [this.#event(ctx, 'cvv.create', { type: 'cvv_slot', id: slot.id })] : []),
          ]);
        } catch (error) {
          if (slot) await this.#cvv.destroy(merchantId, slot.id).catch(() => undefined);
          throw error;
        }
        return { token: toView(found), deduplicated: true, cvv_slot: slot };
      }
      return this.#insert(db, prepared, audit);
    });
  }

  async #insert(db: Sql, prepared: PreparedCard, audit: LaneWriter): Promise<TokenizeResult> {
    return (await this.#insertRows(db, [prepared], audit))[0] as TokenizeResult;
  }

  /**
   * Encrypts each card and writes all rows with their audit records in one statement (the audit INSERT
   * in a CTE). CVV slots are created before the rows are written; if the statement fails they are
   * destroyed, and if a slot cannot be created nothing is written: never one without the other.
   */
  async #insertRows(db: Sql, items: PreparedCard[], audit: LaneWriter): Promise<TokenizeResult[]> {
    const slots: Array<{ merchantId: string; id: string }> = [];
    try {
      const rows = [];
      const events: AuditEvent[] = [];
      const created: Array<{ id: string; slot: CvvSlotView | null }> = [];
      for (const prepared of items) {
        const {
          ctx,
          merchantId,
          request,
          card,
          fingerprint,
          fingerprintVersion,
          pan,
          expiresAt,
          cvvOptions,
        } = prepared;
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
        const slot = request.cvv ? await this.#cvv.create(merchantId, id, request.cvv, cvvOptions) : null;
        if (slot) slots.push({ merchantId, id: slot.id });
        created.push({ id, slot });
        events.push(
          this.#event(ctx, 'token.create', { type: 'token', id }, undefined, { brand: card.brand }),
        );
        if (slot) events.push(this.#event(ctx, 'cvv.create', { type: 'cvv_slot', id: slot.id }));
        rows.push({
          id,
          merchant_id: merchantId,
          alias,
          fingerprint,
          fingerprint_version: fingerprintVersion,
          ciphertext: sealed.ciphertext,
          wrapped_dek: sealed.wrappedDataKey,
          kek_version: pan.version,
          aad_version: pan.version,
          brand: card.brand,
          bin: card.bin,
          last4: card.last4,
          pan_length: card.panLength,
          exp_month: card.expMonth,
          exp_year: card.expYear,
          expires_at: expiresAt,
        });
      }
      const inserted = await db<TokenRow[]>`
        with audit as (${audit.fragment(db, events)})
        insert into vault.tokens ${db(rows)}
        returning ${db.unsafe(viewColumns)}`;
      const byId = new Map(inserted.map((row) => [row.id, row]));
      return created.map(({ id, slot }) => ({
        token: toView(byId.get(id) as TokenRow),
        deduplicated: false,
        cvv_slot: slot,
      }));
    } catch (error) {
      for (const slot of slots) await this.#cvv.destroy(slot.merchantId, slot.id).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Reads by alias that arrive together share one SELECT, every pair scoped by its merchant. (Reads by
   * id go through #recordedSelect, which also writes their audit records.)
   */
  async #lookupBatch(items: TokenKey[]): Promise<Settled<TokenRow | undefined>[]> {
    const sql = this.#sql;
    const rows = await sql<TokenRow[]>`
      select ${sql.unsafe(viewColumns)} from vault.tokens
      where (merchant_id, alias) in (select * from unnest(${items.map((k) => k.merchantId)}::text[], ${items.map((k) => k.key)}::text[]))
        and (expires_at is null or expires_at > now())`;
    const found = new Map(rows.map((row) => [`${row.merchant_id}|${row.alias}`, row]));
    return items.map((k) => ({ ok: true as const, value: found.get(`${k.merchantId}|${k.key}`) }));
  }

  /**
   * Accesses by id that arrive together (masked reads; forwards and reveals): one statement selects the
   * rows and, if every token was found, inserts every access's audit record with them (one round trip,
   * one commit). If any was missing, that insert inserted nothing, and the records go in a second
   * statement with each access's true outcome. Nothing is returned before its record has committed.
   */
  async #recordedSelect<R extends { id: string; merchant_id?: string }>(
    reads: TokenRead[],
    columns: string,
  ): Promise<Settled<R>[]> {
    const sql = this.#sql;
    const keys = new Map(reads.map((r) => [`${r.ctx.merchantId}|${r.id}`, r]));
    const merchants = [...keys.values()].map((r) => r.ctx.merchantId);
    const ids = [...keys.values()].map((r) => r.id);
    return this.#trail.withLane(async (audit) => {
      const event = (r: TokenRead, failure?: string) =>
        this.#event(r.ctx, r.action, { type: 'token', id: r.id }, failure, failure ? undefined : r.details);
      const rows = await sql<(R & { audited: number })[]>`
        with t as (
          select ${sql.unsafe(columns)} from vault.tokens
          where (merchant_id, id) in (select * from unnest(${merchants}::text[], ${ids}::text[]))
            and (expires_at is null or expires_at > now())),
        a as (${audit.fragmentIf(
          sql,
          reads.map((r) => event(r)),
          sql`(select count(*) from t) = ${keys.size}`,
        )})
        select t.*, (select count(*) from a)::int as audited from t`;
      const found = new Map(rows.map(({ audited: _, ...row }) => [`${row.merchant_id}|${row.id}`, row]));
      if (rows.length !== keys.size || rows[0]?.audited !== reads.length) {
        audit.discard();
        const missing = (r: TokenRead) => !found.has(`${r.ctx.merchantId}|${r.id}`);
        await audit.insert(
          sql,
          reads.map((r) => event(r, missing(r) ? 'token_not_found' : undefined)),
        );
      }
      return reads.map((r): Settled<R> => {
        const row = found.get(`${r.ctx.merchantId}|${r.id}`);
        return row
          ? { ok: true, value: row as unknown as R }
          : { ok: false, error: new CardholdError('token_not_found') };
      });
    });
  }

  /**
   * Plain tokenizes that arrive together share one statement and one commit (see NaturalBatcher). If
   * the shared statement fails, each card is tried again on its own, so one bad row (an alias clash)
   * fails only its own request.
   */
  async #insertBatch(items: PreparedCard[]): Promise<Settled<TokenizeResult>[]> {
    const alone = (item: PreparedCard) =>
      this.#trail
        .withLane((audit) => this.#insert(this.#sql, item, audit))
        .then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        );
    if (items.length === 1) return [await alone(items[0] as PreparedCard)];
    try {
      const results = await this.#trail.withLane((audit) => this.#insertRows(this.#sql, items, audit));
      return results.map((value) => ({ ok: true as const, value }));
    } catch {
      return Promise.all(items.map(alone));
    }
  }

  /** A new CVV for an existing token, e.g. a returning customer confirming their card. */
  async addCvv(
    ctx: AccessContext,
    tokenId: string,
    cvv: Secret<string>,
    options: CvvSlotOptions,
  ): Promise<CvvSlotView> {
    await this.#notFrozen(ctx, 'cvv.create', { type: 'token', id: tokenId });
    const { merchantId } = ctx;
    const rows = await this.#sql<{ brand: string }[]>`
      select brand from vault.tokens
      where merchant_id = ${merchantId} and id = ${tokenId} and (expires_at is null or expires_at > now())`;
    const row = rows[0];
    if (!row) {
      return this.#failed(
        ctx,
        'cvv.create',
        { type: 'token', id: tokenId },
        new CardholdError('token_not_found'),
      );
    }
    validateCvv(cvv, cvvLengthOf(row.brand), 'cvv');
    const resolved = this.#cvv.resolveOptions(options, '');
    const slot = await this.#cvv.create(merchantId, tokenId, cvv, resolved);
    try {
      await this.#trail.record(
        this.#event(ctx, 'cvv.create', { type: 'cvv_slot', id: slot.id }, undefined, { token: tokenId }),
      );
    } catch (error) {
      // Fail closed: a CVV whose arrival is not on record does not stay.
      await this.#cvv.destroy(merchantId, slot.id).catch(() => undefined);
      throw error;
    }
    return slot;
  }

  /** Each item succeeds or fails on its own; a failed item writes nothing. */
  async tokenizeBatch(ctx: AccessContext, items: TokenizeRequest[]): Promise<BatchItemResult[]> {
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
          result: await this.tokenize(ctx, item, `cards[${index}]`),
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

  /** A masked read; recorded (found or not) before anything is returned. */
  async get(ctx: AccessContext, idOrAlias: string): Promise<TokenView> {
    await this.#notFrozen(ctx, 'token.read', { type: 'token', id: idOrAlias });
    if (idOrAlias.startsWith('tok_')) {
      return toView(await this.#reads.submit({ ctx, id: idOrAlias, action: 'token.read' }));
    }
    const { merchantId } = ctx;
    const resource = { type: 'token', id: idOrAlias };
    const row = await this.#lookups.submit({ merchantId, key: idOrAlias });
    if (!row) return this.#failed(ctx, 'token.read', resource, new CardholdError('token_not_found'));
    await this.#trail.record(this.#event(ctx, 'token.read', { type: 'token', id: row.id }));
    return toView(row);
  }

  /**
   * Deletes the row and with it the only copy of the wrapped data key: the ciphertext can never be
   * opened again (crypto-shredding), whatever copies of it a backup may hold.
   */
  async delete(ctx: AccessContext, tokenId: string): Promise<void> {
    await this.#notFrozen(ctx, 'token.delete', { type: 'token', id: tokenId });
    const resource = { type: 'token', id: tokenId };
    const deleted = await this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const rows = await db`
          delete from vault.tokens where merchant_id = ${ctx.merchantId} and id = ${tokenId} returning id`;
        if (rows.length > 0) await audit.insert(db, [this.#event(ctx, 'token.delete', resource)]);
        return rows.length > 0;
      }),
    );
    if (!deleted) await this.#failed(ctx, 'token.delete', resource, new CardholdError('token_not_found'));
  }

  async list(ctx: AccessContext, query: ListQuery): Promise<{ data: TokenView[]; has_more: boolean }> {
    await this.#notFrozen(ctx, 'token.search', { type: 'token', id: '*' });
    const { merchantId } = ctx;
    const sql = this.#sql;
    const fingerprint = query.fingerprint ? parseFingerprint(query.fingerprint) : undefined;
    let cursor: { created_at: string; id: string } | undefined;
    if (query.startingAfter) {
      const rows = await sql<{ created_at: string; id: string }[]>`
        select created_at::text as created_at, id from vault.tokens where merchant_id = ${merchantId} and id = ${query.startingAfter}`;
      cursor = rows[0];
      if (!cursor) throw new CardholdError('token_not_found', { field: 'starting_after' });
    }
    const rows = await sql<TokenRow[]>`
      select ${sql.unsafe(viewColumns)} from vault.tokens
      where merchant_id = ${merchantId}
        and (expires_at is null or expires_at > now())
        ${fingerprint ? sql`and fingerprint = ${fingerprint}` : sql``}
        ${query.last4 ? sql`and last4 = ${query.last4}` : sql``}
        ${cursor ? sql`and (created_at, id) < (${cursor.created_at}::text::timestamptz, ${cursor.id})` : sql``}
      order by created_at desc, id desc
      limit ${query.limit + 1}`;
    const data = rows.slice(0, query.limit).map(toView);
    await this.#trail.record(
      this.#event(ctx, 'token.search', { type: 'token', id: '*' }, undefined, {
        by: fingerprint ? 'fingerprint' : query.last4 ? 'last4' : 'none',
        results: data.length,
      }),
    );
    return { data, has_more: rows.length > query.limit };
  }

  /**
   * The card in the clear, for the vault's own use (the forward proxy) or an authorised reveal; recorded
   * with its reason before the card leaves this method.
   */
  reveal(ctx: AccessContext, tokenId: string, reason: string): Promise<RevealedCard> {
    return this.#openRecorded(ctx, tokenId, 'token.reveal', { reason });
  }

  /** The card for the forward proxy, recorded with where it is going (origin and path, no query). */
  openForForward(ctx: AccessContext, tokenId: string, target: string): Promise<RevealedCard> {
    return this.#openRecorded(ctx, tokenId, 'token.forward', { target });
  }

  async #openRecorded(
    ctx: AccessContext,
    tokenId: string,
    action: 'token.reveal' | 'token.forward',
    details: Record<string, string>,
  ): Promise<RevealedCard> {
    // A frozen merchant's cards go nowhere: neither to a person nor to a processor.
    await this.#notFrozen(ctx, action, { type: 'token', id: tokenId });
    // Fail closed: the access is on record (found or not) before the card is opened; a card that
    // leaves without a record does not leave.
    const row = await this.#opens.submit({ ctx, id: tokenId, action, details });
    try {
      return await this.#decrypt(ctx.merchantId, row);
    } catch (error) {
      // Recorded as granted, then it could not be opened (integrity): that failure is recorded too.
      return this.#failed(ctx, action, { type: 'token', id: tokenId }, error);
    }
  }

  async #decrypt(merchantId: string, row: SealedRow): Promise<RevealedCard> {
    const kek = await this.#keys.version(merchantId, 'pan', row.kek_version);
    const plain = openRecord(
      kek,
      { ciphertext: row.ciphertext, wrappedDataKey: row.wrapped_dek },
      panAad(merchantId, row.id, row.aad_version),
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

  /** A frozen merchant's card data is served to nobody; the refusal is recorded. */
  async #notFrozen(
    ctx: AccessContext,
    action: AuditEvent['action'],
    resource: AuditEvent['resource'],
  ): Promise<void> {
    if (this.#freezes && (await this.#freezes.isFrozen(ctx.merchantId))) {
      await this.#failed(ctx, action, resource, new CardholdError('merchant_frozen'));
    }
  }
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
