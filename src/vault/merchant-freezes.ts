import type { Sql } from 'postgres';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { type Actor, accessEvent, type Origin } from '../audit/events.ts';
import { CardholdError } from '../shared/errors.ts';

/**
 * Incident response: a frozen merchant's card data is served to nobody (`merchant_frozen`) until it is
 * unfrozen. The vault learns of a freeze within `cacheSeconds`, like a revoked API key.
 */
export class MerchantFreezes {
  readonly #sql: Sql;
  readonly #cacheMs: number;
  readonly #seen = new Map<string, { at: number; frozen: Promise<boolean> }>();

  constructor(sql: Sql, cacheSeconds: number) {
    this.#sql = sql;
    this.#cacheMs = cacheSeconds * 1000;
  }

  isFrozen(merchantId: string): Promise<boolean> {
    const hit = this.#seen.get(merchantId);
    if (hit && Date.now() - hit.at < this.#cacheMs) return hit.frozen;
    const frozen = this.#sql<{ frozen: boolean }[]>`
      select frozen_at is not null as frozen from identity.merchants where id = ${merchantId}`.then(
      (rows) => rows[0]?.frozen ?? false,
    );
    const entry = { at: Date.now(), frozen };
    this.#seen.set(merchantId, entry);
    frozen.catch(() => {
      if (this.#seen.get(merchantId) === entry) this.#seen.delete(merchantId);
    });
    return frozen;
  }
}

/** Freezes or unfreezes a merchant, recorded in the same transaction. */
export async function setMerchantFrozen(
  sql: Sql,
  trail: AuditTrail,
  who: { actor: Actor; origin: Origin },
  merchantId: string,
  frozen: boolean,
): Promise<{ merchant_id: string; frozen_at: string | null }> {
  return trail.withLane((audit) =>
    sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      const rows = await db<{ frozen_at: Date | null }[]>`
        update identity.merchants
        set frozen_at = ${frozen ? db`coalesce(frozen_at, now())` : null}
        where id = ${merchantId} returning frozen_at`;
      const row = rows[0];
      if (!row) throw new CardholdError('merchant_not_found');
      await audit.insert(db, [
        accessEvent(
          who,
          frozen ? 'merchant.freeze' : 'merchant.unfreeze',
          { type: 'merchant', id: merchantId },
          merchantId,
        ),
      ]);
      return { merchant_id: merchantId, frozen_at: row.frozen_at?.toISOString() ?? null };
    }),
  );
}
