import type { Sql } from 'postgres';
import type { AuditTrail } from '../../audit/audit-trail.ts';
import type { Actor, AuditEvent, Origin } from '../../audit/events.ts';
import { CardholdError } from '../../shared/errors.ts';
import { type Permission, permissionsOf, type RoleName } from '../permissions.ts';
import type { Principal } from '../principal.ts';
import type { AuthenticationMethod, VerifiedSessionToken } from './session-tokens.ts';

/** PCI DSS 8.2.8: a session idle for more than 15 minutes must authenticate again. */
export const IDLE_TIMEOUT_MS = 15 * 60_000;
/** However active, a session ends 12 hours after login. */
export const SESSION_MAX_MS = 12 * 60 * 60_000;

/** An authenticated operator session. */
export interface OperatorPrincipal extends Principal {
  kind: 'operator';
  sid: string;
  amr: AuthenticationMethod[];
  passwordChangeRequired: boolean;
}

/** What a live session's check returns: the account as it is now, and the session's factors. */
interface LiveSession {
  roles: RoleName[];
  merchant_id: string | null;
  password_change_required: boolean;
  amr: string[];
  mfa_at: Date | null;
}

/**
 * The one server-side session check, shared by the api (`Operators`) and the vault (`SessionVerifier`):
 * in one `UPDATE`, the session is not ended, not idle for more than 15 minutes, at most 12 hours old,
 * its account is not disabled, and (when `bound.kid` is given) its token's signing key is not retired;
 * the same statement extends the idle clock. No row means refused.
 */
export function touchSession(
  sql: Sql,
  sid: string,
  now: Date,
  bound: { operatorId?: string; kid?: string },
): Promise<LiveSession[]> {
  const idleSince = new Date(now.getTime() - IDLE_TIMEOUT_MS);
  const bornAfter = new Date(now.getTime() - SESSION_MAX_MS);
  return sql<LiveSession[]>`
    update identity.operator_sessions s set last_seen_at = ${now}
    from identity.operators o
    where s.sid = ${sid} and o.id = s.operator_id and s.revoked_at is null
      and s.last_seen_at >= ${idleSince} and s.created_at > ${bornAfter} and o.disabled_at is null
      ${bound.operatorId ? sql`and s.operator_id = ${bound.operatorId}` : sql``}
      ${
        bound.kid
          ? sql`and exists (select 1 from identity.session_keys k where k.kid = ${bound.kid} and k.retired_at is null)`
          : sql``
      }
    returning o.roles, o.merchant_id, o.password_change_required, s.amr, s.mfa_at`;
}

/**
 * Authenticates a session JWT, on the api and on the vault alike: `verify` checks the token (see
 * `SessionPublicKeys.verify`), then `touchSession` checks and extends its server-side session. Roles,
 * merchant and the change-required flag come from the account as it is now; a principal whose password
 * must change holds no permission; `mfaAt` is when the session last passed TOTP. Every refusal is
 * `session_invalid` and recorded as `auth.failure`, an unverified token only as a keyed hash.
 */
export async function authenticateSession(
  deps: {
    sql: Sql;
    trail: AuditTrail;
    now: () => Date;
    verify: (token: string) => Promise<VerifiedSessionToken>;
  },
  token: string,
  origin: Origin,
): Promise<OperatorPrincipal> {
  let claims: VerifiedSessionToken;
  try {
    claims = await deps.verify(token);
  } catch (error) {
    await recordRefusal(deps.trail, {
      ...authFailure({ type: 'anonymous', id: deps.trail.keyedHash(token) }, origin),
      reason: 'session_invalid',
    });
    throw error;
  }
  const [row] = await touchSession(deps.sql, claims.sid, deps.now(), {
    operatorId: claims.sub,
    kid: claims.kid,
  });
  if (!row) {
    await recordRefusal(deps.trail, {
      ...authFailure({ type: 'user', id: claims.sub }, origin, {
        id: claims.sub,
        merchant_id: claims.merchantId,
      }),
      reason: 'session_invalid',
      details: { session: claims.sid },
    });
    throw new CardholdError('session_invalid');
  }
  const amr = row.amr.filter((m): m is AuthenticationMethod => m === 'pwd' || m === 'otp');
  return {
    kind: 'operator',
    id: claims.sub,
    merchantId: row.merchant_id,
    roles: row.roles,
    permissions: row.password_change_required ? new Set<Permission>() : permissionsOf(row.roles),
    // The authorizer's MFA rule (card data, keys, audit trail) reads this: set only after a TOTP.
    mfaAt: amr.includes('otp') ? row.mfa_at : null,
    sid: claims.sid,
    amr,
    passwordChangeRequired: row.password_change_required,
  };
}

/** A refused sign-in or session, as recorded; the caller sets the reason. */
export function authFailure(
  actor: Actor,
  origin: Origin,
  row?: { id: string; merchant_id: string | null },
): AuditEvent {
  return {
    action: 'auth.failure',
    actor,
    resource: { type: 'operator', id: row?.id ?? 'unknown' },
    merchantId: row?.merchant_id ?? null,
    outcome: 'failure',
    reason: 'invalid_credentials',
    origin,
  };
}

/** Refusals are recorded best-effort: the caller is refused whether or not the record commits. */
export async function recordRefusal(trail: AuditTrail, ...events: AuditEvent[]): Promise<void> {
  try {
    await trail.record(...events);
  } catch {
    // The trail's observer has counted and logged the write failure (PCI DSS 10.7.2).
  }
}
