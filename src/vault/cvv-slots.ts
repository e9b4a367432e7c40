import type { AuditTrail } from '../audit/audit-trail.ts';
import { type AccessContext, accessEvent } from '../audit/events.ts';
import { open, seal } from '../keys/aes-gcm.ts';
import type { KeyHierarchy } from '../keys/key-hierarchy.ts';
import { CardholdError, isCardholdError } from '../shared/errors.ts';
import { type Secret, SecretBytes } from '../shared/secret.ts';
import type { VolatileStore } from '../storage/volatile-store.ts';
import { newId } from './identifiers.ts';

export const CVV_TTL_HARD_CAP_SECONDS = 3600;
export const CVV_USES_HARD_CAP = 10;

export interface CvvSlotView {
  id: string;
  token_id: string;
  uses_remaining: number;
  expires_at: string;
}

export interface CvvSlotOptions {
  ttlSeconds?: number | undefined;
  maxUses?: number | undefined;
}

/**
 * What the caller of `consume` learned from the processor. A definitive answer destroys the slot at once
 * (PCI DSS 3.3.1.2): `approved` or `declined` when the caller can tell which, `answered` when the
 * processor gave its authorization answer but the caller cannot read the verdict from it (the forward
 * proxy sees only an HTTP status, and a 200 may carry a decline). `retriable` (connection error, timeout,
 * 5xx, a refusal of the request itself such as 400, 401 or 429) keeps it for another try within its uses
 * and lifetime. The value goes into the audit record of a destruction that failed.
 */
export type AuthorizationOutcome = 'approved' | 'declined' | 'answered' | 'retriable';

/** What `consume` returns: the attempt's result, and whether the slot is gone now. */
export interface ConsumeResult<T> {
  result: T;
  /** True once the slot no longer exists (destroyed after a definitive answer, or its last use spent). */
  destroyed: boolean;
  /**
   * Set when a definitive answer should have destroyed the slot and the volatile store failed to: an
   * error code, never data. The slot then lives until its TTL (every slot has one, at most
   * CVV_TTL_HARD_CAP_SECONDS) or its last use.
   */
  destroyFailure?: string;
}

/**
 * CVV slots: the CVV encrypted under the merchant's CVV key (never the PAN key), held only in the
 * volatile store with a TTL and a use budget, and never written to PostgreSQL.
 */
export class CvvSlots {
  readonly #store: VolatileStore;
  readonly #keys: KeyHierarchy;
  readonly #defaults: { ttlSeconds: number; maxUses: number };
  readonly #trail: AuditTrail;
  /**
   * Slots (by store key) that an authorization answer should have destroyed when the store could not:
   * refused from then on by this process, and deleted again in the background until the store lets it.
   */
  readonly #doomed = new Map<string, NodeJS.Timeout>();

  constructor(
    store: VolatileStore,
    keys: KeyHierarchy,
    defaults: { ttlSeconds: number; maxUses: number },
    trail: AuditTrail,
  ) {
    this.#store = store;
    this.#keys = keys;
    this.#defaults = defaults;
    this.#trail = trail;
  }

  static keyPrefix(merchantId: string): string {
    return `cardhold:cvv:${merchantId}:`;
  }

  /** Live slots of all merchants, for the `cardhold_cvv_slots_live` gauge. */
  countLive(): Promise<number> {
    return this.#store.count('cardhold:cvv:');
  }

  #key(merchantId: string, slotId: string): string {
    return `${CvvSlots.keyPrefix(merchantId)}${slotId}`;
  }

  /** Checks requested options before anything is written; returns the effective ones. */
  resolveOptions(
    options: CvvSlotOptions = {},
    field = 'cvv_options',
  ): { ttlSeconds: number; maxUses: number } {
    const prefix = field ? `${field}.` : '';
    const ttlSeconds = options.ttlSeconds ?? this.#defaults.ttlSeconds;
    const maxUses = options.maxUses ?? this.#defaults.maxUses;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > CVV_TTL_HARD_CAP_SECONDS) {
      throw new CardholdError('cvv_slot_options_invalid', {
        field: `${prefix}ttl_seconds`,
        detail: `A CVV slot lives 1 to ${CVV_TTL_HARD_CAP_SECONDS} seconds`,
      });
    }
    if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > CVV_USES_HARD_CAP) {
      throw new CardholdError('cvv_slot_options_invalid', {
        field: `${prefix}max_uses`,
        detail: `A CVV slot allows 1 to ${CVV_USES_HARD_CAP} uses`,
      });
    }
    return { ttlSeconds, maxUses };
  }

  async create(
    merchantId: string,
    tokenId: string,
    cvv: Secret<string>,
    options?: CvvSlotOptions,
  ): Promise<CvvSlotView> {
    const { ttlSeconds, maxUses } = this.resolveOptions(options);
    const { version, key } = await this.#keys.active(merchantId, 'cvv');
    const id = newId('cvv');
    const plain = Buffer.from(cvv.expose(), 'utf8');
    let value: Buffer;
    try {
      value = Buffer.concat([
        versionPrefix(version),
        seal(key, plain, aad(merchantId, tokenId, id, version)),
      ]);
    } finally {
      plain.fill(0);
    }
    const created = await this.#store.create(
      this.#key(merchantId, id),
      { value, ref: tokenId },
      maxUses,
      ttlSeconds * 1000,
    );
    value.fill(0);
    if (!created) throw new CardholdError('internal_error', { detail: 'CVV slot id collision' });
    return {
      id,
      token_id: tokenId,
      uses_remaining: maxUses,
      expires_at: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
    };
  }

  async describe(merchantId: string, slotId: string): Promise<CvvSlotView> {
    const info = await this.#store.info(this.#key(merchantId, slotId));
    if (!info) throw new CardholdError('cvv_slot_not_found');
    return {
      id: slotId,
      token_id: info.ref,
      uses_remaining: info.usesLeft,
      expires_at: info.expiresAt.toISOString(),
    };
  }

  async destroy(merchantId: string, slotId: string): Promise<void> {
    if (!(await this.#store.delete(this.#key(merchantId, slotId))))
      throw new CardholdError('cvv_slot_not_found');
  }

  /**
   * Uses the CVV once for an authorization attempt. `attempt` receives the CVV bytes and reports the
   * outcome; the slot is destroyed on a definitive outcome and kept after a retriable one (or a throw).
   * The CVV buffer is zeroed when `attempt` settles, whatever happened.
   *
   * If the destruction itself fails (the volatile store is down), the attempt's result is still returned:
   * the CVV has already gone to the processor, and losing its answer could make the caller charge again.
   * The failure is recorded (best effort: the trail may be down too) and reported in `destroyFailure`;
   * the slot's TTL in the volatile store, set when it was created, is the backstop that removes it.
   */
  async consume<T>(
    ctx: AccessContext,
    slotId: string,
    tokenId: string,
    attempt: (cvv: SecretBytes) => Promise<{ outcome: AuthorizationOutcome; result: T }>,
  ): Promise<ConsumeResult<T>> {
    const { merchantId } = ctx;
    const key = this.#key(merchantId, slotId);
    // A slot whose authorization is over never goes out again, even while the store keeps it.
    const info = this.#doomed.has(key) ? undefined : await this.#store.info(key);
    const found = info !== undefined && info !== null && info.ref === tokenId;
    // Recorded before the CVV is taken: a use that cannot be recorded does not happen.
    await this.#trail.record({
      action: 'cvv.use',
      actor: ctx.actor,
      resource: { type: 'cvv_slot', id: slotId },
      merchantId,
      outcome: found ? 'success' : 'failure',
      reason: found ? null : 'cvv_slot_not_found',
      origin: ctx.origin,
      details: { token: tokenId },
    });
    if (!found) throw new CardholdError('cvv_slot_not_found');
    const taken = await this.#store.take(key);
    if (!taken) throw new CardholdError('cvv_slot_not_found');
    let cvv: SecretBytes;
    try {
      const version = taken.value.readUInt32BE(0);
      const kek = await this.#keys.version(merchantId, 'cvv', version);
      cvv = new SecretBytes(open(kek, taken.value.subarray(4), aad(merchantId, tokenId, slotId, version)));
    } finally {
      taken.value.fill(0);
    }
    let settled: { outcome: AuthorizationOutcome; result: T };
    try {
      settled = await attempt(cvv);
    } finally {
      cvv.wipe();
    }
    const { outcome, result } = settled;
    // The take of its last use deleted the slot already.
    if (taken.usesLeft <= 0) return { result, destroyed: true };
    if (outcome === 'retriable') return { result, destroyed: false };
    try {
      await this.#store.delete(key);
      return { result, destroyed: true };
    } catch (error) {
      const reason = isCardholdError(error) ? error.code : 'volatile_store_unavailable';
      await this.#trail
        .record(
          accessEvent(ctx, 'cvv.destroy', { type: 'cvv_slot', id: slotId }, merchantId, {
            failure: reason,
            details: { token: tokenId, outcome },
          }),
        )
        .catch(() => undefined); // the trail reports its own write failures (critical_control_failure)
      this.#destroyLater(ctx, key, slotId, tokenId, outcome);
      return { result, destroyed: false, destroyFailure: reason };
    }
  }

  /**
   * After a failed destruction: the slot is refused by this process at once, and its deletion is tried
   * again after 1 s, 5 s, 30 s, 2 min and 10 min (a blip of the store, say). The slot's TTL, at most an
   * hour, is the backstop for a store that stays down, and for the other vault replicas meanwhile.
   */
  #destroyLater(
    ctx: AccessContext,
    key: string,
    slotId: string,
    tokenId: string,
    outcome: AuthorizationOutcome,
  ): void {
    const delays = [1_000, 5_000, 30_000, 120_000, 600_000];
    const forget = () => {
      clearTimeout(this.#doomed.get(key));
      this.#doomed.delete(key);
    };
    const retry = (round: number) => {
      const timer = setTimeout(() => {
        this.#store.delete(key).then(
          () => {
            forget();
            void this.#trail
              .record(
                accessEvent(ctx, 'cvv.destroy', { type: 'cvv_slot', id: slotId }, ctx.merchantId, {
                  details: { token: tokenId, outcome, retried: round + 1 },
                }),
              )
              .catch(() => undefined);
          },
          () => {
            if (round + 1 < delays.length) retry(round + 1);
            else {
              // Refused until the TTL has surely removed it from the store.
              const timer = setTimeout(forget, CVV_TTL_HARD_CAP_SECONDS * 1000);
              timer.unref();
              this.#doomed.set(key, timer);
            }
          },
        );
      }, delays[round]);
      timer.unref();
      this.#doomed.set(key, timer);
    };
    retry(0);
  }
}

function versionPrefix(version: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(version);
  return b;
}

function aad(merchantId: string, tokenId: string, slotId: string, version: number): Buffer {
  return Buffer.from(`cardhold/cvv/v1|${merchantId}|${tokenId}|${slotId}|${version}`);
}
