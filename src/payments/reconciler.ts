import type { ConnectorResult, SyncedAuthorization } from '../acquirers/connector.ts';
import type { Logger } from '../shared/logger.ts';
import type { PaymentService } from './payment-service.ts';
import type { AttemptRow } from './payment-views.ts';
import type { VaultClient } from './vault-client.ts';

/**
 * Settles attempts whose answer never came (a timeout, a dropped connection, a crash between sending and
 * recording) by asking the processor what it did with our reference. Only then is the outcome applied,
 * so an ambiguous authorization is never retried elsewhere and never charged twice. An authorization
 * the processor settles as approved or declined also destroys its CVV slot: authorization is complete.
 */
export class Reconciler {
  readonly #payments: PaymentService;
  readonly #vault: VaultClient;
  readonly #logger: Logger;
  #running: Promise<number> | undefined;

  constructor(deps: { payments: PaymentService; vault: VaultClient; logger: Logger }) {
    this.#payments = deps.payments;
    this.#vault = deps.vault;
    this.#logger = deps.logger;
  }

  /**
   * One pass over attempts unsettled for at least `olderThanMs` (a "sent" one younger than the forward
   * timeout may still be answered). Returns how many were settled. Passes never overlap.
   */
  runOnce(olderThanMs: number): Promise<number> {
    if (!this.#running) {
      this.#running = this.#pass(olderThanMs).finally(() => {
        this.#running = undefined;
      });
    }
    return this.#running;
  }

  async #pass(olderThanMs: number): Promise<number> {
    let settled = 0;
    for (const attempt of await this.#payments.unsettledAttempts(olderThanMs)) {
      let done = false;
      try {
        done = await this.#settle(attempt);
        if (done) settled++;
      } catch (error) {
        this.#logger.warn(
          { attempt: attempt.id, err: { message: String((error as Error)?.message ?? error) } },
          'reconciliation of an attempt failed; it stays unsettled',
        );
      }
      // One that cannot be settled now goes to the back of the queue, so it never holds up the others.
      if (!done) await this.#payments.postpone(attempt.id).catch(() => undefined);
    }
    if (settled > 0) this.#logger.info({ settled }, 'payment attempts reconciled');
    return settled;
  }

  async #settle(attempt: AttemptRow): Promise<boolean> {
    const connector = this.#payments.connector(attempt.connector);
    if (!connector?.capabilities.sync) return false;
    // The processor knows a payment by the reference of the authorization attempt.
    const reference =
      attempt.kind === 'authorize'
        ? attempt.id
        : (await this.#payments.authorizationOf(attempt.payment_id))?.id;
    if (!reference) return false;
    const synced = await connector.sync(reference, attempt.merchant_id);
    if (synced.kind !== 'succeeded') return false;
    const auth = synced.value;
    switch (attempt.kind) {
      case 'authorize':
        return this.#settleAuthorization(attempt, auth);
      case 'capture':
        await this.#payments.applyCapture(attempt, found(auth?.captures, attempt.id)).catch(ignoreOutcome);
        return true;
      case 'refund':
        await this.#payments.applyRefund(attempt, found(auth?.refunds, attempt.id)).catch(ignoreOutcome);
        return true;
      case 'void':
        await this.#payments
          .applyVoid(
            attempt,
            auth?.voided
              ? { kind: 'succeeded', value: undefined }
              : { kind: 'failed', code: 'not_processed' },
          )
          .catch(ignoreOutcome);
        return true;
    }
  }

  async #settleAuthorization(attempt: AttemptRow, auth: SyncedAuthorization | undefined): Promise<boolean> {
    const payment = await this.#payments.get({ merchantId: attempt.merchant_id }, attempt.payment_id);
    const slot = await this.#cvvSlotOf(attempt);
    let result: ConnectorResult<{ processorId: string; capturedAmount: number }>;
    if (!auth) result = { kind: 'failed', code: 'not_processed' };
    else if (auth.status === 'approved')
      result = {
        kind: 'succeeded',
        value: { processorId: auth.processorId, capturedAmount: auth.capturedAmount },
      };
    else result = { kind: 'declined', code: auth.declineCode ?? 'generic_decline', message: 'declined' };
    await this.#payments.applyAuthorization(attempt, result).catch(ignoreOutcome);
    if (slot && (result.kind === 'succeeded' || result.kind === 'declined')) {
      await this.#vault.settleCvv(
        attempt.merchant_id,
        slot,
        result.kind === 'succeeded' ? 'approved' : 'declined',
      );
    }
    return payment.status === 'processing' || result.kind !== 'failed';
  }

  async #cvvSlotOf(attempt: AttemptRow): Promise<string | null> {
    return this.#payments.cvvSlotOf(attempt.payment_id, attempt.merchant_id);
  }
}

function found(list: readonly { reference: string }[] | undefined, reference: string): ConnectorResult<void> {
  return list?.some((item) => item.reference === reference)
    ? { kind: 'succeeded', value: undefined }
    : { kind: 'failed', code: 'not_processed' };
}

/** Applying an outcome throws the merchant-facing error (a decline, say); here it is only recorded. */
function ignoreOutcome(error: unknown): void {
  if (!(error instanceof Error && error.name === 'CardholdError')) throw error;
}
