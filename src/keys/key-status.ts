import type { Sql } from 'postgres';
import type { Config } from '../config/config.ts';
import type { RotatablePurpose } from './key-lifecycle.ts';

const DAY_MS = 24 * 3600 * 1000;

export type Cryptoperiods = Record<RotatablePurpose, number> & { warnDays: number };

export function cryptoperiodsOf(config: Config): Cryptoperiods {
  return {
    pan: config.cryptoperiodPanDays,
    cvv: config.cryptoperiodCvvDays,
    fingerprint: config.cryptoperiodFingerprintDays,
    audit: config.cryptoperiodAuditDays,
    warnDays: config.cryptoperiodWarnDays,
  };
}

export interface KeyStatus {
  merchant_id: string | null;
  purpose: RotatablePurpose;
  /** `kek` for merchant keys; `audit_hash` or `audit_signing` for the audit trail's. */
  key: string;
  version: number;
  created_at: string;
  age_days: number;
  cryptoperiod_days: number;
  period_ends_at: string;
  /** ok; warn: the period ends within the warning window; expired: it has ended (rotate now). */
  status: 'ok' | 'warn' | 'expired';
}

/**
 * Every key that encrypts or signs new data now (active merchant keys, the newest audit keys) against
 * its purpose's cryptoperiod (PCI DSS 3.6.4, 3.7.4).
 */
export async function keyStatus(sql: Sql, periods: Cryptoperiods, now = new Date()): Promise<KeyStatus[]> {
  const rows = await sql<
    { merchant_id: string | null; purpose: string; key: string; version: number; created_at: Date }[]
  >`
    select merchant_id, purpose, 'kek' as key, version, created_at from vault.key_encryption_keys where state = 'active'
    union all
    (select null, 'audit', 'audit_hash', version, created_at from audit.hash_keys order by version desc limit 1)
    union all
    (select null, 'audit', 'audit_signing', version, created_at from audit.signing_keys order by version desc limit 1)
    order by 1 nulls first, 2, 3`;
  return rows.map((row) => {
    const purpose = row.purpose as RotatablePurpose;
    const days = periods[purpose];
    const ends = row.created_at.getTime() + days * DAY_MS;
    const status =
      now.getTime() >= ends ? 'expired' : ends - now.getTime() <= periods.warnDays * DAY_MS ? 'warn' : 'ok';
    return {
      merchant_id: row.merchant_id,
      purpose,
      key: row.key,
      version: row.version,
      created_at: row.created_at.toISOString(),
      age_days: Math.floor((now.getTime() - row.created_at.getTime()) / DAY_MS),
      cryptoperiod_days: days,
      period_ends_at: new Date(ends).toISOString(),
      status,
    };
  });
}
