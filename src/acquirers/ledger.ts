import { CardholdError } from '../shared/errors.ts';
import { randomBase62 } from '../vault/identifiers.ts';
import type { AuthorizationState, AuthorizationView } from './schemas.ts';
import type { DeclineCode } from './test-cards.ts';

export interface NewAuthorization {
  reference: string;
  merchant: string;
  amount: number;
  currency: string;
  /** Capture the whole amount at once (an approved authorization only). */
  capture: boolean;
  /** Display data only: the ledger never sees a card number. */
  card: { brand: string; last4: string };
  decline: DeclineCode | null;
}

interface Entry {
  view: AuthorizationView;
  voidReference: string | null;
  /** A final capture ended the authorization: nothing more is captured, whatever is left. */
  closed: boolean;
}

/** How many authorizations a ledger keeps before it forgets the oldest. */
export const LEDGER_CAPACITY = 100_000;

/**
 * The test acquirer's own books: authorizations with their captures and refunds, in memory, per process
 * (the acquirer owns no database). It enforces what a processor enforces, whatever the caller believes:
 * captures up to the authorized amount, refunds up to the captured amount, a void only before any
 * capture, nothing on a declined or voided authorization. Every operation is idempotent by its
 * reference and synchronous, so two concurrent requests cannot both pass a check. Refusals change
 * nothing.
 */
export class AcquirerLedger {
  readonly #entries = new Map<string, Entry>();
  readonly #byReference = new Map<string, string>();
  readonly #capacity: number;
  readonly #now: () => Date;

  constructor(options: { capacity?: number; now?: () => Date } = {}) {
    this.#capacity = options.capacity ?? LEDGER_CAPACITY;
    this.#now = options.now ?? (() => new Date());
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The authorization recorded under the caller's reference, if any: how a caller settles an unknown outcome. */
  findByReference(reference: string): AuthorizationView | undefined {
    const id = this.#byReference.get(reference);
    return id === undefined ? undefined : this.get(id);
  }

  get(id: string): AuthorizationView {
    return structuredClone(this.#entry(id).view);
  }

  /** Records an authorization; a reference seen before returns what was recorded then, unchanged. */
  record(input: NewAuthorization): AuthorizationView {
    const existing = this.findByReference(input.reference);
    if (existing) return existing;
    if (this.#entries.size >= this.#capacity) this.#evictOldest();
    const approved = input.decline === null;
    const createdAt = this.#now().toISOString();
    const view: AuthorizationView = {
      id: `aqa_${randomBase62()}`,
      object: 'authorization',
      reference: input.reference,
      merchant: input.merchant,
      status: approved ? 'approved' : 'declined',
      decline_code: input.decline,
      approval_code: approved ? randomBase62(8).slice(0, 6).toUpperCase() : null,
      amount: input.amount,
      currency: input.currency,
      authorized_amount: approved ? input.amount : 0,
      captured_amount: 0,
      refunded_amount: 0,
      released_amount: 0,
      state: approved ? 'authorized' : 'declined',
      card: { ...input.card },
      captures: [],
      refunds: [],
      created_at: createdAt,
    };
    const entry: Entry = { view, voidReference: null, closed: false };
    if (approved && input.capture) this.#addCapture(entry, input.amount, input.reference);
    this.#entries.set(view.id, entry);
    this.#byReference.set(input.reference, view.id);
    return structuredClone(view);
  }

  capture(id: string, request: { amount: number; reference: string; final?: boolean }): AuthorizationView {
    const entry = this.#entry(id);
    const { view } = entry;
    if (!view.captures.some((c) => c.reference === request.reference)) {
      // A final capture closed the authorization: what it did not take was given back.
      if (view.state === 'declined' || view.state === 'voided' || entry.closed) {
        throw stateError('captured', view.state);
      }
      if (view.captured_amount + request.amount > view.authorized_amount) {
        throw new CardholdError('amount_exceeds_authorized', { field: 'amount' });
      }
      this.#addCapture(entry, request.amount, request.reference);
      if (request.final === true) {
        entry.closed = true;
        view.released_amount = view.authorized_amount - view.captured_amount;
        view.state = 'captured';
      }
    }
    return structuredClone(view);
  }

  void(id: string, request: { reference: string }): AuthorizationView {
    const entry = this.#entry(id);
    const { view } = entry;
    if (entry.voidReference !== request.reference) {
      if (view.state !== 'authorized') throw stateError('voided', view.state);
      entry.voidReference = request.reference;
      view.state = 'voided';
    }
    return structuredClone(view);
  }

  refund(id: string, request: { amount: number; reference: string }): AuthorizationView {
    const { view } = this.#entry(id);
    if (!view.refunds.some((r) => r.reference === request.reference)) {
      if (view.state === 'declined' || view.state === 'voided') throw stateError('refunded', view.state);
      if (view.refunded_amount + request.amount > view.captured_amount) {
        throw new CardholdError('amount_exceeds_captured', { field: 'amount' });
      }
      view.refunds.push(this.#movement('aqr', request.amount, request.reference));
      view.refunded_amount += request.amount;
    }
    return structuredClone(view);
  }

  #addCapture(entry: Entry, amount: number, reference: string): void {
    const { view } = entry;
    view.captures.push(this.#movement('aqc', amount, reference));
    view.captured_amount += amount;
    view.state = view.captured_amount === view.authorized_amount ? 'captured' : 'partially_captured';
  }

  #movement(prefix: 'aqc' | 'aqr', amount: number, reference: string) {
    return { id: `${prefix}_${randomBase62()}`, reference, amount, created_at: this.#now().toISOString() };
  }

  #entry(id: string): Entry {
    const entry = this.#entries.get(id);
    if (!entry) throw new CardholdError('authorization_not_found');
    return entry;
  }

  #evictOldest(): void {
    const oldest = this.#entries.entries().next();
    if (oldest.done) return;
    const [id, entry] = oldest.value;
    this.#entries.delete(id);
    this.#byReference.delete(entry.view.reference);
  }
}

function stateError(action: string, state: AuthorizationState): CardholdError {
  return new CardholdError('invalid_state', {
    detail: `An authorization in state ${state} cannot be ${action}`,
  });
}
