import type { Sql } from 'postgres';
import type { Authorized, CardSummary, Connector, ConnectorResult } from '../acquirers/connector.ts';
import type { Router } from '../acquirers/routing.ts';
import { hasControlCharacter } from '../shared/control-characters.ts';
import { CardholdError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { NaturalBatcher, type Settled } from '../shared/natural-batcher.ts';
import { findPans } from '../shared/pan-detect.ts';
import { newId } from '../vault/identifiers.ts';
import { checkAmount, currencyCode } from './currencies.ts';
import { assertAllowed, isAllowed, type PaymentStatus } from './payment-status.ts';
import {
  type AttemptRow,
  attemptView,
  type PaymentError,
  type PaymentRow,
  type PaymentView,
  paymentView,
  type RefundRow,
  refundView,
} from './payment-views.ts';
import type { VaultClient } from './vault-client.ts';

/** Who acts, for which merchant (the api's counterpart of the vault's AccessContext). */
export interface PaymentContext {
  merchantId: string;
}

/**
 * Where payment events go, inside the transaction that changes the payment (a transactional outbox:
 * an event exists exactly when the change committed).
 */
export type EventSink = (
  tx: Sql,
  events: { merchantId: string; type: string; data: Record<string, unknown> }[],
) => Promise<unknown>;

export interface CreateParams {
  amount: number;
  currency: string;
  captureMethod?: 'automatic' | 'manual' | undefined;
  paymentMethod?: string | undefined;
  cvvSlot?: string | undefined;
  description?: string | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface ConfirmParams {
  paymentMethod?: string | undefined;
  cvvSlot?: string | undefined;
  captureMethod?: 'automatic' | 'manual' | undefined;
}

export interface ListParams {
  limit: number;
  startingAfter?: string | undefined;
  status?: string | undefined;
  createdGte?: number | undefined;
  createdLte?: number | undefined;
}

const SELECT_PAYMENT = 'select * from payments.payment_intents';

/** Payment rows handed back as they were, because the outcome being applied had been applied already. */
const unchanged = new WeakSet<PaymentRow>();

/**
 * Free text a merchant sends is refused if it holds a card number (the api must never store one) or a
 * control character. The card-number check also runs on the JSON text the value becomes, which is what
 * the webhook outbox checks: a payment never passes here and then fails there, after its authorization.
 */
function refuseCardNumbers(value: string | undefined, field: string): void {
  if (value === undefined) return;
  if (hasControlCharacter(value)) {
    throw new CardholdError('request_invalid', {
      field,
      detail: 'This field must not contain control characters',
    });
  }
  if (findPans(value).length > 0 || findPans(JSON.stringify(value)).length > 0) {
    throw new CardholdError('request_invalid', {
      field,
      detail: 'This field must not contain a card number',
    });
  }
}

function checkMetadata(metadata: Record<string, string> | undefined): void {
  if (!metadata) return;
  for (const [key, value] of Object.entries(metadata)) {
    refuseCardNumbers(key, 'metadata');
    refuseCardNumbers(value, `metadata.${key}`);
  }
}

/**
 * Payments in the api: the state machine of payment-status.ts over per-attempt records. Each change
 * locks the payment row, records what it is about to ask the processor (an attempt "sent"), commits,
 * asks, and then records the answer in a second transaction with its event. A crash between the two
 * leaves a "sent" attempt that the reconciler settles through the processor's status query.
 */
export class PaymentService {
  readonly #sql: Sql;
  readonly #vault: VaultClient;
  readonly #router: Router;
  readonly #events: EventSink;
  readonly #logger: Logger;
  readonly #answers: NaturalBatcher<Answer, PaymentRow>;
  readonly #starts: NaturalBatcher<Start, StartedRow>;

  constructor(deps: { sql: Sql; vault: VaultClient; router: Router; events: EventSink; logger: Logger }) {
    this.#sql = deps.sql;
    this.#vault = deps.vault;
    this.#router = deps.router;
    this.#events = deps.events;
    this.#logger = deps.logger;
    // Approvals and declines that arrive together are recorded in one transaction (see #answerBatch).
    this.#answers = new NaturalBatcher({
      run: (answers: Answer[]) => this.#answerBatch(answers),
      concurrency: 1,
      maxBatch: 100,
    });
    // New payments confirmed at once that arrive together are written in one statement (#startBatch).
    this.#starts = new NaturalBatcher({
      run: (starts: Start[]) => this.#startBatch(starts),
      concurrency: 1,
      maxBatch: 100,
    });
  }

  async create(ctx: PaymentContext, params: CreateParams): Promise<PaymentView> {
    const currency = this.#checkCreate(params);
    const status = params.paymentMethod ? 'requires_confirmation' : 'requires_payment_method';
    return paymentView(await this.#insert(this.#sql, ctx, params, currency, status, undefined));
  }

  /** Checks a new payment's parameters; returns its currency code. */
  #checkCreate(params: CreateParams): string {
    const currency = currencyCode(params.currency);
    checkAmount(params.amount, currency);
    refuseCardNumbers(params.description, 'description');
    checkMetadata(params.metadata);
    if (params.cvvSlot && !params.paymentMethod) {
      throw new CardholdError('request_invalid', {
        field: 'payment_method',
        detail: 'A CVV slot goes with a payment method',
      });
    }
    return currency;
  }

  async #insert(
    db: Sql,
    ctx: PaymentContext,
    params: CreateParams,
    currency: string,
    status: PaymentStatus,
    card: CardSummary | undefined,
  ): Promise<PaymentRow> {
    const rows = await db<PaymentRow[]>`
      insert into payments.payment_intents
        (id, merchant_id, amount, currency, status, capture_method, payment_method, cvv_slot, card_brand,
         card_last4, description, metadata)
      values (${newId('pi')}, ${ctx.merchantId}, ${params.amount}, ${currency}, ${status},
        ${params.captureMethod ?? 'automatic'}, ${params.paymentMethod ?? null}, ${params.cvvSlot ?? null},
        ${card?.brand ?? null}, ${card?.last4 ?? null}, ${params.description ?? null},
        ${db.json(params.metadata ?? {})})
      returning *`;
    return rows[0] as PaymentRow;
  }

  async get(ctx: PaymentContext, id: string): Promise<PaymentView> {
    return paymentView(await this.#row(this.#sql, ctx, id));
  }

  async list(ctx: PaymentContext, params: ListParams): Promise<{ data: PaymentView[]; has_more: boolean }> {
    const sql = this.#sql;
    let cursor: { created_at: string; id: string } | undefined;
    if (params.startingAfter) {
      const found = await sql<{ created_at: string; id: string }[]>`
        select created_at::text as created_at, id from payments.payment_intents
        where merchant_id = ${ctx.merchantId} and id = ${params.startingAfter}`;
      cursor = found[0];
      if (!cursor) throw new CardholdError('payment_not_found', { field: 'starting_after' });
    }
    // `created` is shown in whole seconds, so created[lte]=X includes everything within second X.
    const rows = await sql<PaymentRow[]>`
      ${sql.unsafe(SELECT_PAYMENT)} where merchant_id = ${ctx.merchantId}
        ${params.status ? sql`and status = ${params.status}` : sql``}
        ${params.createdGte !== undefined ? sql`and created_at >= to_timestamp(${params.createdGte})` : sql``}
        ${params.createdLte !== undefined ? sql`and created_at < to_timestamp(${params.createdLte + 1})` : sql``}
        ${cursor ? sql`and (created_at, id) < (${cursor.created_at}::text::timestamptz, ${cursor.id})` : sql``}
      order by created_at desc, id desc limit ${params.limit + 1}`;
    return { data: rows.slice(0, params.limit).map(paymentView), has_more: rows.length > params.limit };
  }

  async attempts(ctx: PaymentContext, id: string) {
    await this.#row(this.#sql, ctx, id);
    const rows = await this.#sql<AttemptRow[]>`
      select * from payments.attempts where merchant_id = ${ctx.merchantId} and payment_id = ${id}
      order by created_at, id`;
    return rows.map(attemptView);
  }

  /**
   * Authorizes with the routed connectors in order. A connector that fails unambiguously (never
   * reached, or said it did not process) hands over to the next; a decline or an unknown outcome ends
   * the attempt there, so a card is never charged twice.
   */
  async confirm(ctx: PaymentContext, id: string, params: ConfirmParams = {}): Promise<PaymentView> {
    const current = await this.#row(this.#sql, ctx, id);
    const tokenId = params.paymentMethod ?? current.payment_method;
    if (!tokenId) {
      throw new CardholdError('payment_state_invalid', {
        field: 'payment_method',
        detail: 'Give a payment method to confirm this payment',
      });
    }
    if (params.paymentMethod) assertAllowed(current.status, 'set_payment_method');
    assertAllowed(current.status, 'confirm');
    const route = await this.#route(ctx, Number(current.amount), current.currency, tokenId);
    const cvvSlot = params.paymentMethod ? (params.cvvSlot ?? null) : (params.cvvSlot ?? current.cvv_slot);
    const captureMethod = params.captureMethod ?? current.capture_method;

    // One statement, so one round trip: the payment goes to processing (if it still may), and the first
    // attempt is on record, before anything is sent.
    const attemptId = newId('pa');
    const rows = await this.#sql<StartedRow[]>`
      with p as (
        update payments.payment_intents set status = 'processing', payment_method = ${tokenId},
          cvv_slot = ${cvvSlot}, card_brand = ${route.card?.brand ?? null}, card_last4 = ${route.card?.last4 ?? null},
          capture_method = ${captureMethod}, last_error = null, updated_at = now()
        where merchant_id = ${ctx.merchantId} and id = ${id}
          and status in ('requires_payment_method', 'requires_confirmation')
        returning *),
      a as (${this.#authorizeAttempt(attemptId, route.first.name, captureMethod)})
      select p.*, a.created_at as attempt_created_at from p, a`;
    const row = rows[0];
    if (!row) {
      // Someone else moved it on since it was read: refuse as its status now says.
      const now = await this.#row(this.#sql, ctx, id);
      assertAllowed(now.status, 'confirm');
      throw new CardholdError('payment_in_progress');
    }
    const started = splitStarted(row, attemptId, route.first.name, captureMethod);
    return this.#authorize(ctx, started.payment, started.attempt, route.connectors, current.status);
  }

  /**
   * Create and confirm in one: the payment is written straight into processing with its first attempt,
   * one transaction instead of a create, a read and an update.
   */
  async createAndConfirm(
    ctx: PaymentContext,
    params: CreateParams & { paymentMethod: string },
  ): Promise<PaymentView> {
    const currency = this.#checkCreate(params);
    const route = await this.#route(ctx, params.amount, currency, params.paymentMethod);
    const captureMethod = params.captureMethod ?? 'automatic';
    const attemptId = newId('pa');
    const card = route.card;
    const row = await this.#starts.submit({
      paymentId: newId('pi'),
      attemptId,
      merchantId: ctx.merchantId,
      amount: String(params.amount),
      currency,
      captureMethod,
      paymentMethod: params.paymentMethod,
      cvvSlot: params.cvvSlot ?? null,
      cardBrand: card?.brand ?? null,
      cardLast4: card?.last4 ?? null,
      description: params.description ?? null,
      metadata: JSON.stringify(params.metadata ?? {}),
      connector: route.first.name,
    });
    const started = splitStarted(row, attemptId, route.first.name, captureMethod);
    return this.#authorize(ctx, started.payment, started.attempt, route.connectors, 'requires_confirmation');
  }

  /**
   * New payments with their first attempts, straight into processing: one statement for all that
   * arrive together (each column one array). If it fails, each is written on its own, so a bad one
   * fails alone.
   */
  async #startBatch(starts: Start[]): Promise<Settled<StartedRow>[]> {
    const sql = this.#sql;
    // Prepared (unlike #answerBatch's updates): it only inserts, so no cached plan scans a table, and
    // planning it afresh measured slower (1,540 against 1,177 authorizations/s).
    const insert = (batch: Start[]) =>
      sql.unsafe<(StartedRow & { attempt_id: string })[]>(
        START_PAYMENTS,
        START_COLUMNS.map((name) => batch.map((start) => start[name])),
        { prepare: true },
      );
    const settle = (rows: (StartedRow & { attempt_id: string })[], batch: Start[]) => {
      const byId = new Map(rows.map(({ attempt_id: _, ...row }) => [row.id, row as StartedRow]));
      return batch.map((s): Settled<StartedRow> => {
        const row = byId.get(s.paymentId);
        return row ? { ok: true, value: row } : { ok: false, error: new Error('payment not written') };
      });
    };
    try {
      return settle(await insert(starts), starts);
    } catch (error) {
      if (starts.length === 1) return [{ ok: false, error }];
      return Promise.all(
        starts.map((one) =>
          insert([one]).then(
            (rows) => settle(rows, [one])[0] as Settled<StartedRow>,
            (error: unknown) => ({ ok: false as const, error }),
          ),
        ),
      );
    }
  }

  /** The first authorization attempt of the payment in CTE `p`, inserted in the same statement. */
  #authorizeAttempt(attemptId: string, connector: string, captureMethod: 'automatic' | 'manual') {
    return this.#sql`
      insert into payments.attempts (id, payment_id, merchant_id, kind, connector, amount, capture, status)
      select ${attemptId}, p.id, p.merchant_id, 'authorize', ${connector}, p.amount, ${captureMethod === 'automatic'}, 'sent'
      from p returning created_at`;
  }

  /** The connectors for a payment, and the card's brand and last four when routing needs the brand. */
  async #route(
    ctx: PaymentContext,
    amount: number,
    currency: string,
    tokenId: string,
  ): Promise<{ connectors: Connector[]; first: Connector; card: CardSummary | undefined }> {
    let card: CardSummary | undefined;
    if (this.#router.usesBrand) {
      card = await this.#vault.token(ctx.merchantId, tokenId);
      if (!card) throw new CardholdError('payment_method_invalid', { field: 'payment_method' });
    }
    const connectors = this.#router.route({
      merchantId: ctx.merchantId,
      amount,
      currency,
      brand: card?.brand ?? '',
    });
    const first = connectors[0];
    if (!first)
      throw new CardholdError('processor_unavailable', { detail: 'No connector takes this payment' });
    return { connectors, first, card };
  }

  async #authorize(
    ctx: PaymentContext,
    payment: PaymentRow,
    first: AttemptRow,
    connectors: readonly Connector[],
    before: PaymentStatus,
  ): Promise<PaymentView> {
    const tokenId = payment.payment_method as string;
    let attempt = first;
    for (let i = 0; ; i++) {
      const connector = connectors[i] as Connector;
      let result: ConnectorResult<Authorized>;
      try {
        result = await connector.authorize({
          reference: attempt.id,
          merchantId: ctx.merchantId,
          amount: Number(payment.amount),
          currency: payment.currency,
          capture: attempt.capture,
          token: tokenId,
          cvvSlot: payment.cvv_slot,
        });
      } catch (error) {
        const code = error instanceof CardholdError ? error.code : 'vault_answer_lost';
        if (code === 'token_not_found' || code === 'cvv_slot_not_found') {
          return this.#refusedByVault(attempt, code, before);
        }
        result = notAnswered(error);
        this.#logger.warn(
          { code, payment: payment.id },
          result.kind === 'failed'
            ? 'authorize not sent'
            : 'authorize may have been sent; the reconciler settles it',
        );
      }
      const next = connectors[i + 1];
      if (result.kind === 'failed' && next) {
        // One transaction: a crash between the two must not leave a processing payment with no attempt
        // the reconciler would look at.
        const failed = attempt;
        attempt = await this.#sql.begin(async (tx) => {
          const db = tx as unknown as Sql;
          await this.#finishAttempt(db, failed.id, 'failed', { errorCode: result.code });
          return this.#newAttempt(db, payment, 'authorize', next.name, {
            amount: Number(payment.amount),
            capture: failed.capture,
          });
        });
        continue;
      }
      return this.applyAuthorization(attempt, result, before);
    }
  }

  /**
   * The vault refused before anything was sent: the token is not this merchant's (or is gone), or the
   * CVV slot has expired or been used up. The payment goes back to where it was, as if never confirmed.
   */
  async #refusedByVault(
    attempt: AttemptRow,
    code: 'token_not_found' | 'cvv_slot_not_found',
    before: PaymentStatus,
  ): Promise<never> {
    await this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      await this.#finishAttempt(db, attempt.id, 'failed', { errorCode: code });
      await db`
        update payments.payment_intents set status = ${code === 'token_not_found' ? 'requires_payment_method' : before},
          cvv_slot = case when ${code === 'cvv_slot_not_found'} then null else cvv_slot end,
          payment_method = case when ${code === 'token_not_found'} then null else payment_method end,
          updated_at = now()
        where id = ${attempt.payment_id}`;
    });
    if (code === 'token_not_found')
      throw new CardholdError('payment_method_invalid', { field: 'payment_method' });
    throw new CardholdError('cvv_slot_not_found', { field: 'payment_method_options.card.cvc_token' });
  }

  /**
   * Records an authorization's outcome on its attempt and its payment: at confirmation, or later when
   * the reconciler learns it. Throws the merchant-facing error for a decline or an unreachable processor.
   * `before` is the status a payment returns to when nothing was processed.
   */
  async applyAuthorization(
    attempt: AttemptRow,
    result: ConnectorResult<Authorized>,
    before: PaymentStatus = 'requires_confirmation',
  ): Promise<PaymentView> {
    const payment =
      result.kind === 'succeeded' || result.kind === 'declined'
        ? await this.#answers.submit({ attempt, result })
        : await this.#applyOne(attempt, result, before);
    if (unchanged.has(payment)) {
      // The attempt was settled already (by the reconciler, or another replica's): nothing is applied
      // twice. An answer that contradicts the settlement needs a person: the processor may hold money.
      if (result.kind === 'succeeded') {
        this.#logger.error(
          { payment: payment.id, attempt: attempt.id, status: payment.status },
          'an approval arrived for an attempt already settled; check the processor and void if needed',
        );
      }
      return paymentView(payment);
    }
    if (result.kind === 'declined') {
      throw new CardholdError('card_declined', {
        extensions: { decline_code: result.code, payment_intent: payment.id },
      });
    }
    if (result.kind === 'failed') {
      // Turned down by the processor, not unreachable: the same request would be turned down again. The
      // payment exists (it may have been created by this very request): its id goes with the error.
      throw new CardholdError(result.refused ? 'processor_refused' : 'processor_unavailable', {
        extensions: { payment_intent: payment.id },
      });
    }
    return paymentView(payment);
  }

  /**
   * Approvals and declines that arrive together: one transaction updates all their attempts (one
   * statement) and payments (one statement, pipelined with the first) and writes all their events. If it
   * fails, nothing of it committed, and each answer is recorded on its own, so one bad row fails alone.
   */
  async #answerBatch(answers: Answer[]): Promise<Settled<PaymentRow>[]> {
    if (answers.length === 1) return [await this.#answerAlone(answers[0] as Answer)];
    try {
      const byPayment = await this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const changes = answers.map(answerChanges);
        const column = <T>(pick: (c: AnswerChanges) => T) => changes.map(pick);
        // Unprepared, so planned afresh for each batch: a plan cached while the tables were small
        // scans them whole (measured: 2.5 ms a batch at 20k payments, against an index lookup per row).
        const fresh = { prepare: false };
        // The payments first: only those whose attempt is still unsettled change (ANSWER_PAYMENTS), so an
        // outcome settled meanwhile makes the batch fall back to one at a time, where it is skipped.
        const [updated] = await Promise.all([
          db.unsafe<PaymentRow[]>(
            ANSWER_PAYMENTS,
            [
              column((c) => c.paymentId),
              column((c) => c.status),
              column((c) => c.amountReceived),
              column((c) => c.capturable),
              column((c) => c.connector),
              column((c) => c.reference),
              column((c) => c.cardBrand),
              column((c) => c.cardLast4),
              column((c) => c.lastError),
              column((c) => c.attemptId),
            ],
            fresh,
          ),
          db.unsafe(
            FINISH_ATTEMPTS,
            [
              column((c) => c.attemptId),
              column((c) => c.attemptStatus),
              column((c) => c.reference),
              column((c) => c.declineCode),
            ],
            fresh,
          ),
        ]);
        const rows = new Map(updated.map((row) => [row.id, row]));
        if (rows.size !== answers.length) throw new Error('a payment of the batch was not updated');
        await this.#events(
          db,
          answers.map(({ attempt, result }) => {
            const payment = rows.get(attempt.payment_id) as PaymentRow;
            return {
              merchantId: payment.merchant_id,
              type: result.kind === 'declined' ? 'payment_intent.payment_failed' : capturableEvent(payment),
              data: paymentView(payment),
            };
          }),
        );
        return rows;
      });
      return answers.map(({ attempt }) => ({
        ok: true as const,
        value: byPayment.get(attempt.payment_id) as PaymentRow,
      }));
    } catch {
      return Promise.all(answers.map((answer) => this.#answerAlone(answer)));
    }
  }

  #answerAlone(answer: Answer): Promise<Settled<PaymentRow>> {
    return this.#applyOne(answer.attempt, answer.result).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
  }

  /** One answer in its own transaction: the fallback of a batch, and failures and unknown outcomes. */
  async #applyOne(
    attempt: AttemptRow,
    result: ConnectorResult<Authorized>,
    before: PaymentStatus = 'requires_confirmation',
  ): Promise<PaymentRow> {
    return this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      const locked = await this.#lockForOutcome(db, attempt);
      if (locked.settled) return locked.row;
      switch (result.kind) {
        case 'succeeded': {
          // Both updates go out at once on the transaction's connection (postgres.js pipelines them).
          const finished = this.#finishAttempt(db, attempt.id, 'succeeded', {
            reference: result.value.processorId,
          });
          const captured = result.value.capturedAmount;
          const card = result.value.card;
          const [, updated] = await Promise.all([
            finished,
            db<PaymentRow[]>`
            update payments.payment_intents set status = ${captured > 0 ? 'succeeded' : 'requires_capture'},
              amount_received = ${captured}, amount_capturable = case when ${captured > 0} then 0 else amount end,
              connector = ${attempt.connector}, connector_payment_id = ${result.value.processorId},
              card_brand = coalesce(${card?.brand ?? null}, card_brand), card_last4 = coalesce(${card?.last4 ?? null}, card_last4),
              cvv_slot = null, updated_at = now()
            where id = ${attempt.payment_id} returning *`,
          ]);
          return this.#emitCapturable(db, updated[0] as PaymentRow);
        }
        case 'declined': {
          const finished = this.#finishAttempt(db, attempt.id, 'declined', { declineCode: result.code });
          const error = declineError(result.code);
          const [, updated] = await Promise.all([
            finished,
            db<PaymentRow[]>`
            update payments.payment_intents set status = 'requires_payment_method', payment_method = null,
              last_error = ${db.json(error as never)}, connector = ${attempt.connector}, cvv_slot = null,
              card_brand = coalesce(${result.card?.brand ?? null}, card_brand),
              card_last4 = coalesce(${result.card?.last4 ?? null}, card_last4), updated_at = now()
            where id = ${attempt.payment_id} returning *`,
          ]);
          const payment = updated[0] as PaymentRow;
          await this.#emit(db, payment, 'payment_intent.payment_failed');
          return payment;
        }
        case 'failed': {
          // Nothing was charged anywhere: the payment can be confirmed again (the CVV slot, if any, was kept).
          await this.#finishAttempt(db, attempt.id, 'failed', { errorCode: result.code });
          const updated = await db<PaymentRow[]>`
            update payments.payment_intents set status = ${before === 'requires_payment_method' ? before : 'requires_confirmation'},
              updated_at = now()
            where id = ${attempt.payment_id} returning *`;
          return updated[0] as PaymentRow;
        }
        case 'unknown': {
          // The answer was lost: the payment stays processing until the reconciler learns the outcome.
          await this.#finishAttempt(db, attempt.id, 'unknown', { errorCode: result.code });
          const rows = await db<PaymentRow[]>`${db.unsafe(SELECT_PAYMENT)} where id = ${attempt.payment_id}`;
          const payment = rows[0] as PaymentRow;
          await this.#emit(db, payment, 'payment_intent.processing');
          return payment;
        }
      }
    });
  }

  async capture(
    ctx: PaymentContext,
    id: string,
    params: { amountToCapture?: number | undefined; finalCapture?: boolean | undefined } = {},
  ): Promise<PaymentView> {
    const finalCapture = params.finalCapture ?? true;
    const { payment, attempt, connector, releaseRest } = await this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      const row = await this.#row(db, ctx, id, true);
      assertAllowed(row.status, 'capture');
      const connector = this.#connectorOf(row);
      await this.#refuseWhilePending(db, row.id, ['void']);
      const capturable = Number(row.amount_capturable);
      if (params.amountToCapture === undefined && capturable === 0) {
        // "Capture the rest" with nothing left: the rest is reserved by captures still in flight.
        throw new CardholdError('payment_in_progress', {
          detail: 'Another capture of this payment is in flight',
        });
      }
      const amount = params.amountToCapture ?? capturable;
      checkAmount(amount, row.currency, 'amount_to_capture');
      if (amount > capturable)
        throw new CardholdError('capture_amount_exceeded', { field: 'amount_to_capture' });
      const earlier = await db`
        select 1 from payments.attempts
        where payment_id = ${row.id} and kind = 'capture' and status in ('succeeded', 'sent', 'unknown') limit 1`;
      if ((!finalCapture || earlier.length > 0) && !connector.capabilities.multipleCaptures) {
        throw new CardholdError('payment_state_invalid', {
          field: 'final_capture',
          detail: 'This processor allows one capture per payment',
        });
      }
      if (amount < capturable && !connector.capabilities.partialCapture) {
        throw new CardholdError('capture_amount_exceeded', {
          field: 'amount_to_capture',
          detail: 'This processor captures the whole authorized amount only',
        });
      }
      const inFlight = await db<{ capture: boolean; status: string }[]>`
        select capture, status from payments.attempts
        where payment_id = ${row.id} and kind = 'capture' and status in ('sent', 'unknown')`;
      // A final capture on its way closes the authorization at the processor: a capture that could
      // otherwise go ahead waits the moment it takes (the checks above still answer first). One whose
      // answer was lost does not block: it may stay unknown for long (for ever, without sync), and a
      // capture after it is refused at the processor if it did close the authorization, which gives
      // the reservation back.
      if (inFlight.some((a) => a.capture && a.status === 'sent')) {
        throw new CardholdError('payment_in_progress', {
          detail: 'A final capture of this payment is in flight',
        });
      }
      // Reserve the amount, so that concurrent captures cannot together exceed the authorization.
      const updated = await db<PaymentRow[]>`
        update payments.payment_intents set amount_capturable = amount_capturable - ${amount}, updated_at = now()
        where id = ${row.id} returning *`;
      const payment = updated[0] as PaymentRow;
      const attempt = await this.#newAttempt(db, payment, 'capture', connector.name, {
        amount,
        capture: finalCapture,
      });
      // The processor releases what is left only when no other capture could still need it: with one
      // in flight, this final capture closes the payment here but leaves the authorization to expire.
      return { payment, attempt, connector, releaseRest: finalCapture && inFlight.length === 0 };
    });
    const result = await connector
      .capture({
        reference: attempt.id,
        merchantId: ctx.merchantId,
        processorId: payment.connector_payment_id as string,
        amount: Number(attempt.amount),
        final: releaseRest,
      })
      .catch(notAnswered);
    return this.applyCapture(attempt, result);
  }

  async applyCapture(attempt: AttemptRow, result: ConnectorResult<void>): Promise<PaymentView> {
    const amount = Number(attempt.amount);
    const finalCapture = attempt.capture;
    const payment = await this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      const { row, settled: already } = await this.#lockForOutcome(db, attempt);
      if (already) return row;
      if (result.kind === 'succeeded') {
        await this.#finishAttempt(db, attempt.id, 'succeeded', {});
        // Nothing left to capture counts as done only once no other capture is in flight: a zero left
        // may be another capture's reservation, which comes back if that capture fails.
        const updated = await db<PaymentRow[]>`
          update payments.payment_intents p set amount_received = amount_received + ${amount},
            amount_capturable = case when ${finalCapture} then 0 else amount_capturable end,
            status = case
              when ${finalCapture} then 'succeeded'
              when amount_capturable = 0 and not exists (
                select 1 from payments.attempts a
                where a.payment_id = p.id and a.kind = 'capture' and a.status in ('sent', 'unknown'))
                then 'succeeded'
              else status end,
            updated_at = now()
          where id = ${row.id} returning *`;
        return this.#emitCapturable(db, updated[0] as PaymentRow);
      }
      if (result.kind === 'unknown') {
        await this.#finishAttempt(db, attempt.id, 'unknown', { errorCode: result.code });
        return row;
      }
      // Refused or not processed: the reservation goes back, unless a final capture has closed the
      // payment meanwhile (it released the rest of the authorization).
      await this.#finishAttempt(db, attempt.id, result.kind, {
        ...(result.kind === 'declined' ? { declineCode: result.code } : { errorCode: result.code }),
      });
      const updated = await db<PaymentRow[]>`
        update payments.payment_intents set
          amount_capturable = case when status = 'succeeded' then amount_capturable else amount_capturable + ${amount} end,
          updated_at = now()
        where id = ${row.id} returning *`;
      return updated[0] as PaymentRow;
    });
    if (unchanged.has(payment)) return paymentView(payment);
    return settled(payment, result, 'The processor refused the capture');
  }

  async cancel(
    ctx: PaymentContext,
    id: string,
    params: { cancellationReason?: string | undefined } = {},
  ): Promise<PaymentView> {
    const reason = params.cancellationReason ?? null;
    const step = await this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      const row = await this.#row(db, ctx, id, true);
      assertAllowed(row.status, 'cancel');
      if (row.status !== 'requires_capture') {
        // Nothing was authorized: nothing to release at a processor.
        const updated = await db<PaymentRow[]>`
          update payments.payment_intents set status = 'canceled', cancellation_reason = ${reason},
            amount_capturable = 0, updated_at = now()
          where id = ${row.id} returning *`;
        const payment = updated[0] as PaymentRow;
        await this.#emit(db, payment, 'payment_intent.canceled');
        return { kind: 'done', payment } as const;
      }
      await this.#refuseWhilePending(db, row.id, ['capture', 'void']);
      const connector = this.#connectorOf(row);
      if (!connector.capabilities.void) {
        throw new CardholdError('payment_state_invalid', {
          detail: 'This processor cannot void an authorization',
        });
      }
      const captured = await db`
        select 1 from payments.attempts where payment_id = ${row.id} and kind = 'capture' and status = 'succeeded' limit 1`;
      if (captured.length > 0) {
        throw new CardholdError('payment_state_invalid', {
          detail: 'Part of this payment was captured; refund it instead of canceling',
        });
      }
      await db`update payments.payment_intents set cancellation_reason = ${reason} where id = ${row.id}`;
      const attempt = await this.#newAttempt(db, row, 'void', connector.name, {});
      return { kind: 'void', attempt, connector, processorId: row.connector_payment_id as string } as const;
    });
    if (step.kind === 'done') return paymentView(step.payment);
    const result = await step.connector
      .void({ reference: step.attempt.id, merchantId: ctx.merchantId, processorId: step.processorId })
      .catch(notAnswered);
    return this.applyVoid(step.attempt, result);
  }

  async applyVoid(attempt: AttemptRow, result: ConnectorResult<void>): Promise<PaymentView> {
    const payment = await this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      const { row, settled: already } = await this.#lockForOutcome(db, attempt);
      if (already) return row;
      if (result.kind === 'succeeded') {
        await this.#finishAttempt(db, attempt.id, 'succeeded', {});
        const updated = await db<PaymentRow[]>`
          update payments.payment_intents set status = 'canceled', amount_capturable = 0, updated_at = now()
          where id = ${row.id} returning *`;
        const payment = updated[0] as PaymentRow;
        await this.#emit(db, payment, 'payment_intent.canceled');
        return payment;
      }
      await this.#finishAttempt(db, attempt.id, result.kind, {
        ...(result.kind === 'declined' ? { declineCode: result.code } : { errorCode: result.code }),
      });
      return row;
    });
    if (unchanged.has(payment)) return paymentView(payment);
    return settled(payment, result, 'The processor refused to void');
  }

  async refund(
    ctx: PaymentContext,
    params: {
      paymentId: string;
      amount?: number | undefined;
      reason?: string | undefined;
      metadata?: Record<string, string> | undefined;
    },
  ): Promise<ReturnType<typeof refundView>> {
    checkMetadata(params.metadata);
    const step = await this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      const row = await this.#row(db, ctx, params.paymentId, true, 'payment_intent');
      // A payment still requires_capture after a non-final capture holds captured money: refundable.
      const partlyCaptured = row.status === 'requires_capture' && Number(row.amount_received) > 0;
      if (!isAllowed(row.status, 'refund') && !partlyCaptured) {
        throw new CardholdError('payment_state_invalid', {
          field: 'payment_intent',
          detail: `A payment in status ${row.status} cannot be refunded`,
        });
      }
      const connector = this.#connectorOf(row);
      const refundable = Number(row.amount_received) - Number(row.amount_refunded);
      // An amount given must be a valid amount; none given means all that is left, if anything is.
      if (params.amount !== undefined) checkAmount(params.amount, row.currency);
      const amount = params.amount ?? refundable;
      if (amount < 1) throw new CardholdError('refund_amount_exceeded', { field: 'amount' });
      if (amount > refundable) throw new CardholdError('refund_amount_exceeded', { field: 'amount' });
      if (amount < Number(row.amount_received) && !connector.capabilities.partialRefund) {
        throw new CardholdError('refund_amount_exceeded', {
          field: 'amount',
          detail: 'This processor refunds the whole captured amount only',
        });
      }
      // Reserve: refunds in flight count against what is left to refund.
      await db`update payments.payment_intents set amount_refunded = amount_refunded + ${amount}, updated_at = now()
        where id = ${row.id}`;
      const refundId = newId('re');
      const inserted = await db<RefundRow[]>`
        insert into payments.refunds (id, payment_id, merchant_id, amount, currency, status, reason, metadata)
        values (${refundId}, ${row.id}, ${row.merchant_id}, ${amount}, ${row.currency}, 'pending',
          ${params.reason ?? null}, ${db.json(params.metadata ?? {})})
        returning *`;
      const attempt = await this.#newAttempt(db, row, 'refund', connector.name, { amount, refundId });
      return {
        refund: inserted[0] as RefundRow,
        attempt,
        connector,
        processorId: row.connector_payment_id as string,
      };
    });
    const result = await step.connector
      .refund({
        reference: step.attempt.id,
        merchantId: ctx.merchantId,
        processorId: step.processorId,
        amount: Number(step.refund.amount),
      })
      .catch(notAnswered);
    return this.applyRefund(step.attempt, result);
  }

  async applyRefund(
    attempt: AttemptRow,
    result: ConnectorResult<void>,
  ): Promise<ReturnType<typeof refundView>> {
    const amount = Number(attempt.amount);
    let already = false;
    const refund = await this.#sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      const locked = await this.#lockForOutcome(db, attempt);
      if (locked.settled) {
        already = true;
        const rows = await db<RefundRow[]>`select * from payments.refunds where id = ${attempt.refund_id}`;
        return rows[0] as RefundRow;
      }
      const payment = locked.row;
      if (result.kind === 'unknown') {
        await this.#finishAttempt(db, attempt.id, 'unknown', { errorCode: result.code });
        const rows = await db<RefundRow[]>`select * from payments.refunds where id = ${attempt.refund_id}`;
        return rows[0] as RefundRow;
      }
      const succeeded = result.kind === 'succeeded';
      await this.#finishAttempt(db, attempt.id, result.kind, {
        ...(result.kind === 'declined' ? { declineCode: result.code } : {}),
        ...(result.kind === 'failed' ? { errorCode: result.code } : {}),
      });
      if (!succeeded) {
        await db`update payments.payment_intents set amount_refunded = amount_refunded - ${amount}, updated_at = now()
          where id = ${payment.id}`;
      }
      const rows = await db<RefundRow[]>`
        update payments.refunds set status = ${succeeded ? 'succeeded' : 'failed'},
          failure_reason = ${succeeded ? null : result.code}, updated_at = now()
        where id = ${attempt.refund_id} returning *`;
      const refund = rows[0] as RefundRow;
      await this.#events(db, [
        {
          merchantId: refund.merchant_id,
          type: succeeded ? 'refund.created' : 'refund.failed',
          data: refundView(refund),
        },
      ]);
      return refund;
    });
    if (already) return refundView(refund);
    if (result.kind === 'failed') throw new CardholdError('processor_unavailable');
    return refundView(refund);
  }

  async getRefund(ctx: PaymentContext, id: string): Promise<ReturnType<typeof refundView>> {
    const rows = await this.#sql<RefundRow[]>`
      select * from payments.refunds where merchant_id = ${ctx.merchantId} and id = ${id}`;
    if (!rows[0]) throw new CardholdError('refund_not_found');
    return refundView(rows[0]);
  }

  async listRefunds(
    ctx: PaymentContext,
    params: { limit: number; paymentId?: string | undefined; startingAfter?: string | undefined },
  ) {
    const sql = this.#sql;
    let cursor: { created_at: string; id: string } | undefined;
    if (params.startingAfter) {
      const found = await sql<{ created_at: string; id: string }[]>`
        select created_at::text as created_at, id from payments.refunds where merchant_id = ${ctx.merchantId} and id = ${params.startingAfter}`;
      cursor = found[0];
      if (!cursor) throw new CardholdError('refund_not_found', { field: 'starting_after' });
    }
    const rows = await sql<RefundRow[]>`
      select * from payments.refunds where merchant_id = ${ctx.merchantId}
        ${params.paymentId ? sql`and payment_id = ${params.paymentId}` : sql``}
        ${cursor ? sql`and (created_at, id) < (${cursor.created_at}::text::timestamptz, ${cursor.id})` : sql``}
      order by created_at desc, id desc limit ${params.limit + 1}`;
    return { data: rows.slice(0, params.limit).map(refundView), has_more: rows.length > params.limit };
  }

  /** Attempts whose outcome is not known, oldest first: for the reconciler. */
  async unsettledAttempts(olderThanMs: number, limit = 100): Promise<AttemptRow[]> {
    return this.#sql<AttemptRow[]>`
      select * from payments.attempts
      where status in ('sent', 'unknown') and updated_at <= now() - ${`${olderThanMs} milliseconds`}::interval
      order by updated_at limit ${limit}`;
  }

  /** Moves an attempt the reconciler could not settle now to the back of its queue. */
  async postpone(attemptId: string): Promise<void> {
    await this.#sql`
      update payments.attempts set updated_at = now() where id = ${attemptId} and status in ('sent', 'unknown')`;
  }

  /** The CVV slot a payment's authorization uses, if it still holds one. */
  async cvvSlotOf(paymentId: string, merchantId: string): Promise<string | null> {
    const rows = await this.#sql<{ cvv_slot: string | null }[]>`
      select cvv_slot from payments.payment_intents where merchant_id = ${merchantId} and id = ${paymentId}`;
    return rows[0]?.cvv_slot ?? null;
  }

  connector(name: string): Connector | undefined {
    return this.#router.connector(name);
  }

  /** The authorization attempt whose reference the processor knows a payment by. */
  async authorizationOf(paymentId: string): Promise<AttemptRow | undefined> {
    const rows = await this.#sql<AttemptRow[]>`
      select * from payments.attempts where payment_id = ${paymentId} and kind = 'authorize' and status = 'succeeded'
      order by created_at desc limit 1`;
    return rows[0];
  }

  async #row(db: Sql, ctx: PaymentContext, id: string, lock = false, field?: string): Promise<PaymentRow> {
    const rows = await db<PaymentRow[]>`
      ${db.unsafe(SELECT_PAYMENT)} where merchant_id = ${ctx.merchantId} and id = ${id}
      ${lock ? db`for update` : db``}`;
    const row = rows[0];
    // A foreign merchant's payment answers exactly like a missing one.
    if (!row) throw new CardholdError('payment_not_found', field ? { field } : {});
    return row;
  }

  /**
   * Locks the attempt's payment for the caller and says whether the attempt has been settled already (by
   * the reconciler, a late answer, another replica): an outcome is applied once, whoever learns it. A
   * settled attempt's row is marked `unchanged` for the callers up the stack.
   */
  async #lockForOutcome(db: Sql, attempt: AttemptRow): Promise<{ row: PaymentRow; settled: boolean }> {
    const row = await this.#row(db, { merchantId: attempt.merchant_id }, attempt.payment_id, true);
    const live = await db`
      select 1 from payments.attempts where id = ${attempt.id} and status in ('sent', 'unknown')`;
    if (live.length > 0) return { row, settled: false };
    unchanged.add(row);
    return { row, settled: true };
  }

  #connectorOf(row: PaymentRow): Connector {
    const connector = row.connector ? this.#router.connector(row.connector) : undefined;
    if (!connector) {
      throw new CardholdError('processor_unavailable', {
        detail: 'The connector that authorized this payment is no longer configured',
      });
    }
    return connector;
  }

  async #refuseWhilePending(db: Sql, paymentId: string, kinds: string[]): Promise<void> {
    const pending = await db`
      select 1 from payments.attempts
      where payment_id = ${paymentId} and kind in ${db(kinds)} and status in ('sent', 'unknown') limit 1`;
    if (pending.length > 0) throw new CardholdError('payment_in_progress');
  }

  async #newAttempt(
    db: Sql,
    payment: PaymentRow,
    kind: AttemptRow['kind'],
    connector: string,
    options: { amount?: number; capture?: boolean; refundId?: string },
  ): Promise<AttemptRow> {
    const rows = await db<AttemptRow[]>`
      insert into payments.attempts (id, payment_id, merchant_id, kind, connector, amount, capture, status, refund_id)
      values (${newId('pa')}, ${payment.id}, ${payment.merchant_id}, ${kind}, ${connector},
        ${options.amount ?? null}, ${options.capture ?? false}, 'sent', ${options.refundId ?? null})
      returning *`;
    return rows[0] as AttemptRow;
  }

  async #finishAttempt(
    db: Sql,
    attemptId: string,
    status: AttemptRow['status'],
    facts: { reference?: string; declineCode?: string; errorCode?: string },
  ): Promise<void> {
    await db`
      update payments.attempts set status = ${status},
        connector_reference = coalesce(${facts.reference ?? null}, connector_reference),
        decline_code = ${facts.declineCode ?? null}, error_code = ${facts.errorCode ?? null}, updated_at = now()
      where id = ${attemptId}`;
  }

  /** After an authorization or capture: succeeded, or still (partly) capturable. */
  async #emitCapturable(db: Sql, payment: PaymentRow): Promise<PaymentRow> {
    await this.#emit(db, payment, capturableEvent(payment));
    return payment;
  }

  #emit(db: Sql, payment: PaymentRow, type: string): Promise<unknown> {
    return this.#events(db, [{ merchantId: payment.merchant_id, type, data: paymentView(payment) }]);
  }
}

/** A new payment confirmed at once, with its first attempt's id and connector (text, for #startBatch). */
interface Start {
  paymentId: string;
  attemptId: string;
  merchantId: string;
  amount: string;
  currency: string;
  captureMethod: 'automatic' | 'manual';
  paymentMethod: string;
  cvvSlot: string | null;
  cardBrand: string | null;
  cardLast4: string | null;
  description: string | null;
  /** JSON text. */
  metadata: string;
  connector: string;
}

/** #startBatch's parameters, one text array each, in this order. */
const START_COLUMNS = [
  'paymentId',
  'attemptId',
  'merchantId',
  'amount',
  'currency',
  'captureMethod',
  'paymentMethod',
  'cvvSlot',
  'cardBrand',
  'cardLast4',
  'description',
  'metadata',
  'connector',
] as const satisfies readonly (keyof Start)[];

/** New payments straight into processing, each with its first authorization attempt. */
const START_PAYMENTS = `
  with x as (
    select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
      $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
      as x(id, attempt_id, merchant_id, amount, currency, capture_method, payment_method, cvv_slot,
        card_brand, card_last4, description, metadata, connector)),
  p as (
    insert into payments.payment_intents
      (id, merchant_id, amount, currency, status, capture_method, payment_method, cvv_slot, card_brand,
       card_last4, description, metadata)
    select id, merchant_id, amount::bigint, currency, 'processing', capture_method, payment_method, cvv_slot,
      card_brand, card_last4, description, metadata::jsonb
    from x
    returning *),
  a as (
    insert into payments.attempts (id, payment_id, merchant_id, kind, connector, amount, capture, status)
    select x.attempt_id, p.id, p.merchant_id, 'authorize', x.connector, p.amount,
      x.capture_method = 'automatic', 'sent'
    from p join x on x.id = p.id
    returning id, payment_id, created_at)
  select p.*, a.created_at as attempt_created_at, a.id as attempt_id from p join a on a.payment_id = p.id`;

/** #answerBatch's attempts: id, status, processor reference, decline code (one text array each). */
const FINISH_ATTEMPTS = `
  update payments.attempts a set status = x.status,
    connector_reference = coalesce(x.reference, a.connector_reference),
    decline_code = x.decline_code, error_code = null, updated_at = now()
  from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as x(id, status, reference, decline_code)
  where a.id = x.id and a.status in ('sent', 'unknown')`;

/**
 * #answerBatch's payments: the columns of AnswerChanges, in the order of its parameters; only a payment
 * whose attempt is still unsettled changes (sent first, before FINISH_ATTEMPTS, in the same transaction).
 */
const ANSWER_PAYMENTS = `
  update payments.payment_intents p set status = x.status,
    amount_received = coalesce(x.amount_received::bigint, p.amount_received),
    amount_capturable = case when x.capturable = 'all' then p.amount
      when x.capturable = 'none' then 0 else p.amount_capturable end,
    connector = x.connector, connector_payment_id = coalesce(x.processor_id, p.connector_payment_id),
    card_brand = coalesce(x.card_brand, p.card_brand), card_last4 = coalesce(x.card_last4, p.card_last4),
    last_error = coalesce(x.last_error::jsonb, p.last_error), cvv_slot = null, updated_at = now(),
    payment_method = case when x.status = 'requires_payment_method' then null else p.payment_method end
  from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::text[], $10::text[])
    as x(id, status, amount_received, capturable, connector, processor_id, card_brand, card_last4, last_error,
      attempt_id)
  where p.id = x.id and exists (
    select 1 from payments.attempts a
    where a.id = x.attempt_id and a.payment_id = p.id and a.status in ('sent', 'unknown'))
  returning p.*`;

/** An authorization's definitive answer, to record on its attempt and payment. */
interface Answer {
  attempt: AttemptRow;
  result: Extract<ConnectorResult<Authorized>, { kind: 'succeeded' | 'declined' }>;
}

/** What an answer changes, as the columns of #answerBatch's statements (text, as postgres.js sends arrays). */
interface AnswerChanges {
  attemptId: string;
  attemptStatus: 'succeeded' | 'declined';
  reference: string | null;
  declineCode: string | null;
  paymentId: string;
  status: PaymentStatus;
  amountReceived: string | null;
  /** The capturable amount after: all of it, none, or unchanged (`keep`). */
  capturable: 'all' | 'none' | 'keep';
  connector: string;
  cardBrand: string | null;
  cardLast4: string | null;
  lastError: string | null;
}

/** The same changes the one-at-a-time path makes (#applyOne), for one answer of a batch. */
function answerChanges({ attempt, result }: Answer): AnswerChanges {
  const common = { attemptId: attempt.id, paymentId: attempt.payment_id, connector: attempt.connector };
  if (result.kind === 'succeeded') {
    const captured = result.value.capturedAmount;
    return {
      ...common,
      attemptStatus: 'succeeded',
      reference: result.value.processorId,
      declineCode: null,
      status: captured > 0 ? 'succeeded' : 'requires_capture',
      amountReceived: String(captured),
      capturable: captured > 0 ? 'none' : 'all',
      cardBrand: result.value.card?.brand ?? null,
      cardLast4: result.value.card?.last4 ?? null,
      lastError: null,
    };
  }
  return {
    ...common,
    attemptStatus: 'declined',
    reference: null,
    declineCode: result.code,
    status: 'requires_payment_method',
    amountReceived: null,
    capturable: 'keep',
    cardBrand: result.card?.brand ?? null,
    cardLast4: result.card?.last4 ?? null,
    lastError: JSON.stringify(declineError(result.code)),
  };
}

/** The payment's error after a decline, in Stripe's shape. */
function declineError(code: string): PaymentError {
  return { type: 'card_error', code: 'card_declined', decline_code: code, message: 'The card was declined' };
}

function capturableEvent(payment: PaymentRow): string {
  return payment.status === 'succeeded'
    ? 'payment_intent.succeeded'
    : 'payment_intent.amount_capturable_updated';
}

/** A payment row with its first attempt's creation time, as the starting statements return it. */
type StartedRow = PaymentRow & { attempt_created_at: Date };

function splitStarted(
  row: StartedRow,
  attemptId: string,
  connector: string,
  captureMethod: 'automatic' | 'manual',
): { payment: PaymentRow; attempt: AttemptRow } {
  const { attempt_created_at: created, ...payment } = row;
  return {
    payment,
    attempt: {
      id: attemptId,
      payment_id: payment.id,
      merchant_id: payment.merchant_id,
      kind: 'authorize',
      connector,
      amount: payment.amount,
      capture: captureMethod === 'automatic',
      status: 'sent',
      refund_id: null,
      connector_reference: null,
      decline_code: null,
      error_code: null,
      created_at: created,
      updated_at: created,
    },
  };
}

/** The payment after a capture or void: refused and unreachable outcomes become the caller's error. */
function settled(payment: PaymentRow, result: ConnectorResult<void>, refusal: string): PaymentView {
  if (result.kind === 'failed') throw new CardholdError('processor_unavailable');
  if (result.kind === 'declined') throw new CardholdError('payment_state_invalid', { detail: refusal });
  return paymentView(payment);
}

/**
 * A connector call that threw. The vault unreachable or refusing first means nothing reached a processor
 * (`failed`: safe to try elsewhere or again). A lost vault answer, or anything unexpected, may have come
 * after the processor acted: `unknown`, for the reconciler to settle by asking it, so nothing is charged,
 * captured or refunded twice.
 */
function notAnswered(error: unknown): ConnectorResult<never> {
  if (error instanceof CardholdError && error.code !== 'vault_answer_lost') {
    return { kind: 'failed', code: error.code };
  }
  return { kind: 'unknown', code: 'vault_answer_lost' };
}
