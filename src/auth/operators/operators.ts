import { createHash } from 'node:crypto';
import postgres, { type Sql } from 'postgres';
import type { AuditTrail } from '../../audit/audit-trail.ts';
import {
  type AccessContext,
  type Actor,
  type AuditEvent,
  accessEvent,
  type Origin,
} from '../../audit/events.ts';
import type { KeyProvider } from '../../keys/key-provider.ts';
import { CardholdError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { Secret } from '../../shared/secret.ts';
import { randomBase62 } from '../../vault/identifiers.ts';
import { type OperatorRole, operatorRoles } from '../permissions.ts';
import { dummyPasswordHash, hashPassword, needsRehash, verifyPassword } from './password-hash.ts';
import {
  checkPasswordPolicy,
  checkUsername,
  isValidUsername,
  normalizeUsername,
  PASSWORD_HISTORY,
} from './password-policy.ts';
import {
  authenticateSession,
  authFailure,
  type OperatorPrincipal,
  recordRefusal,
  touchSession,
} from './session-state.ts';
import { type AuthenticationMethod, SessionTokens } from './session-tokens.ts';
import { checkTotp, newTotpSecret, provisioningUri, type TotpCheck } from './totp.ts';
import { TotpKey } from './totp-key.ts';

/** PCI DSS 8.3.4: locked after at most 10 consecutive failures, for at least 30 minutes. */
export const LOCKOUT_THRESHOLD = 10;
export const LOCKOUT_MS = 30 * 60_000;
export { IDLE_TIMEOUT_MS, type OperatorPrincipal, SESSION_MAX_MS } from './session-state.ts';
/** The time between the password step and the TOTP step. */
export const CHALLENGE_MS = 5 * 60_000;

export type { OperatorRole };
export { operatorRoles };

/** Who performs an administrative action on operators, and from where. */
export type AdminContext = Omit<AccessContext, 'merchantId'>;

export interface OperatorView {
  id: string;
  username: string;
  roles: OperatorRole[];
  merchant_id: string | null;
  mfa_enrolled: boolean;
  password_change_required: boolean;
  locked_until: string | null;
  created_at: string;
  last_login_at: string | null;
  disabled_at: string | null;
}

/** The answer to a correct password: the second step, never a session. */
export type LoginStep =
  | {
      stage: 'mfa_enrolment';
      /** Single-use, for `confirmMfa`; valid 5 minutes. */
      challengeToken: Secret<string>;
      /** `otpauth://totp/…` to show once (as a QR code); it holds the new TOTP secret. */
      enrolmentUri: Secret<string>;
      expiresAt: Date;
    }
  | { stage: 'mfa_required'; challengeToken: Secret<string>; expiresAt: Date };

export interface OperatorSession {
  /** The session JWT (15 minutes; `refresh` before then). */
  token: Secret<string>;
  sid: string;
  expiresAt: Date;
  operator: OperatorView;
  /** Set by an administrator's create or reset: only `changePassword` is allowed until it is done. */
  passwordChangeRequired: boolean;
}

interface OperatorRow {
  id: string;
  username: string;
  roles: OperatorRole[];
  merchant_id: string | null;
  password_hash: string;
  password_change_required: boolean;
  failed_attempts: number;
  locked_until: Date | null;
  totp_secret: Buffer | null;
  totp_key_version: number | null;
  totp_enrolled_at: Date | null;
  last_totp_step: string | null;
  last_login_at: Date | null;
  created_at: Date;
  disabled_at: Date | null;
}

interface ChallengeRow {
  challenge_id: string;
  pending_totp_secret: Buffer | null;
  challenge_key_version: number | null;
  challenge_created_at: Date;
  expires_at: Date;
  consumed_at: Date | null;
  password_changed_at: Date;
}

const OPERATOR_COLUMNS = `o.id, o.username, o.roles, o.merchant_id, o.password_hash, o.password_change_required,
  o.failed_attempts, o.locked_until, o.totp_secret, o.totp_key_version, o.totp_enrolled_at, o.last_totp_step,
  o.last_login_at, o.created_at, o.disabled_at`;

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const sha256 = (value: string) => createHash('sha256').update(value).digest();
const operatorBinding = (id: string) => `operator|${id}`;
const challengeBinding = (challengeId: string, operatorId: string) =>
  `challenge|${challengeId}|${operatorId}`;

/** Thrown inside a transaction to roll it back and fail the step as a refused credential. */
class Refusal extends Error {
  readonly reason: 'totp_replayed' | 'mfa_challenge_invalid';

  constructor(reason: 'totp_replayed' | 'mfa_challenge_invalid') {
    super(reason);
    this.reason = reason;
  }
}

export interface OperatorsOptions {
  /** The api role's pool (cardhold_api_runtime). */
  sql: Sql;
  trail: AuditTrail;
  provider: KeyProvider;
  /** The clock for lockout, idle timeout, TOTP steps and token lifetimes; tests move it. */
  now?: () => Date;
  logger?: Logger;
}

/**
 * Operator accounts (PCI DSS 8): argon2id passwords with policy and history, lockout, TOTP MFA enrolled
 * at first login, and server-backed session JWTs with an idle timeout. Every change commits with its
 * audit record; refusals are recorded best-effort (the caller is refused either way). No password,
 * hash, TOTP secret or code ever reaches a record, a log line or an error.
 */
export class Operators {
  readonly #sql: Sql;
  readonly #trail: AuditTrail;
  readonly #now: () => Date;
  readonly #logger: Logger | undefined;
  readonly #totpKey: TotpKey;
  readonly #tokens: SessionTokens;

  private constructor(options: OperatorsOptions, totpKey: TotpKey, tokens: SessionTokens) {
    this.#sql = options.sql;
    this.#trail = options.trail;
    this.#now = options.now ?? (() => new Date());
    this.#logger = options.logger;
    this.#totpKey = totpKey;
    this.#tokens = tokens;
  }

  /** Opens the TOTP key and the session-signing keys, creating (and recording) them on first start. */
  static async open(options: OperatorsOptions): Promise<Operators> {
    const now = options.now ?? (() => new Date());
    const { key, created: totpCreated } = await TotpKey.open(options.sql, options.provider);
    const { tokens, created: kid } = await SessionTokens.open(options.sql, options.provider, now);
    const self = options.trail.selfAccess;
    const events: AuditEvent[] = [];
    if (totpCreated) {
      events.push(
        accessEvent(
          self,
          'operator_key.create',
          { type: 'totp_encryption_key', id: `v${key.version}` },
          null,
        ),
      );
    }
    if (kid)
      events.push(accessEvent(self, 'operator_key.create', { type: 'session_signing_key', id: kid }, null));
    if (events.length > 0) await options.trail.record(...events);
    return new Operators(options, key, tokens);
  }

  /** The session tokens' public keys, for `GET /.well-known/jwks.json`. */
  jwks() {
    return this.#tokens.jwks();
  }

  // ---------------------------------------------------------------------------------------------------
  // Accounts

  /**
   * The first security administrator, for the CLI's bootstrap: refused (and recorded) once any operator
   * exists, so there is never a default password. The password is the administrator's own, so no change
   * is required at first login; TOTP enrolment is.
   */
  async bootstrap(
    username: string,
    password: string,
    ctx: AdminContext = this.#trail.selfAccess,
  ): Promise<OperatorView> {
    const name = checkUsername(username);
    checkPasswordPolicy(password, name);
    const passwordHash = await hashPassword(password);
    const id = `opr_${randomBase62()}`;
    const created = await this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        await db`select pg_advisory_xact_lock(hashtext('cardhold.operators.bootstrap'))`;
        const [existing] = await db<
          { any: boolean }[]
        >`select exists (select 1 from identity.operators) as any`;
        if (existing?.any) return undefined;
        const row = await this.#insert(db, {
          id,
          username: name,
          roles: ['security-admin'],
          merchantId: null,
          passwordHash,
          passwordChangeRequired: false,
        });
        await audit.insert(db, [
          accessEvent(ctx, 'operator.create', { type: 'operator', id }, null, {
            details: { username: name, roles: 'security-admin', bootstrap: true },
          }),
        ]);
        return row;
      }),
    );
    if (!created) {
      await recordRefusal(
        this.#trail,
        accessEvent(ctx, 'operator.create', { type: 'operator', id: 'bootstrap' }, null, {
          failure: 'operator_bootstrap_refused',
        }),
      );
      throw new CardholdError('operator_bootstrap_refused');
    }
    return view(created);
  }

  /**
   * An operator created by an administrator (whose `users:admin` permission the route checks). The
   * initial password is set by the administrator, so the operator must change it at first login
   * (PCI DSS 8.3.5).
   */
  async create(
    ctx: AdminContext,
    input: { username: string; password: string; roles: readonly string[]; merchantId?: string | null },
  ): Promise<OperatorView> {
    const name = checkUsername(input.username);
    const roles = checkRoles(input.roles, input.merchantId ?? null);
    checkPasswordPolicy(input.password, name);
    const passwordHash = await hashPassword(input.password);
    const id = `opr_${randomBase62()}`;
    try {
      const row = await this.#trail.withLane((audit) =>
        this.#sql.begin(async (tx) => {
          const db = tx as unknown as Sql;
          const row = await this.#insert(db, {
            id,
            username: name,
            roles,
            merchantId: input.merchantId ?? null,
            passwordHash,
            passwordChangeRequired: true,
          });
          await audit.insert(db, [
            accessEvent(ctx, 'operator.create', { type: 'operator', id }, row.merchant_id, {
              details: { username: name, roles: roles.join(' ') },
            }),
          ]);
          return row;
        }),
      );
      return view(row);
    } catch (error) {
      if (error instanceof postgres.PostgresError && error.code === '23505') {
        throw new CardholdError('operator_exists', { field: 'username' });
      }
      if (error instanceof postgres.PostgresError && error.code === '23503') {
        throw new CardholdError('merchant_not_found', { field: 'merchant_id' });
      }
      throw error;
    }
  }

  async #insert(
    db: Sql,
    o: {
      id: string;
      username: string;
      roles: OperatorRole[];
      merchantId: string | null;
      passwordHash: string;
      passwordChangeRequired: boolean;
    },
  ): Promise<OperatorRow> {
    const now = this.#now();
    const rows = await db<OperatorRow[]>`
      insert into identity.operators as o (id, username, roles, merchant_id, password_hash, password_changed_at,
        password_change_required, created_at)
      values (${o.id}, ${o.username}, ${o.roles}, ${o.merchantId}, ${o.passwordHash}, ${now},
        ${o.passwordChangeRequired}, ${now})
      returning ${db.unsafe(OPERATOR_COLUMNS)}`;
    await db`insert into identity.password_history (operator_id, password_hash, created_at)
      values (${o.id}, ${o.passwordHash}, ${now})`;
    return rows[0] as OperatorRow;
  }

  /** An administrator's read of an account, recorded whether it found one or not. */
  async get(ctx: AdminContext, id: string): Promise<OperatorView> {
    const row = await this.#find(id);
    await this.#trail.record(
      accessEvent(ctx, 'operator.read', { type: 'operator', id }, row?.merchant_id ?? null, {
        failure: row ? undefined : 'operator_not_found',
      }),
    );
    if (!row) throw new CardholdError('operator_not_found');
    return view(row);
  }

  /** A signed-in operator's own username (for "who am I"); their own, so not an administrative read. */
  async usernameOf(id: string): Promise<string> {
    const row = await this.#find(id);
    if (!row) throw new CardholdError('session_invalid');
    return row.username;
  }

  async #find(id: string): Promise<OperatorRow | undefined> {
    const rows = await this.#sql<OperatorRow[]>`
      select ${this.#sql.unsafe(OPERATOR_COLUMNS)} from identity.operators o where o.id = ${id}`;
    return rows[0];
  }

  /** Lifts a lockout before its 30 minutes are up (an administrator who confirmed the person's identity). */
  async unlock(ctx: AdminContext, id: string): Promise<OperatorView> {
    return this.#adminUpdate(
      ctx,
      id,
      'operator.unlock',
      (db) => db`
      update identity.operators o set locked_until = null, failed_attempts = 0
      where o.id = ${id} returning ${db.unsafe(OPERATOR_COLUMNS)}`,
    );
  }

  /** Disables an account and ends its sessions (PCI DSS 8.2.5: access of leavers revoked at once). */
  async disable(ctx: AdminContext, id: string): Promise<OperatorView> {
    const now = this.#now();
    return this.#adminUpdate(ctx, id, 'operator.disable', async (db) => {
      const rows = await db<OperatorRow[]>`
        update identity.operators o set disabled_at = coalesce(disabled_at, ${now})
        where o.id = ${id} returning ${db.unsafe(OPERATOR_COLUMNS)}`;
      await this.#revokeSessions(db, id, null);
      return rows;
    });
  }

  /**
   * Removes the operator's authenticator (a lost phone) and ends its sessions: the next login enrols a
   * new one. Whoever knows the password can then enrol, so reset the password with it unless the person
   * is known to still hold it alone.
   */
  async resetMfa(ctx: AdminContext, id: string): Promise<OperatorView> {
    return this.#adminUpdate(ctx, id, 'operator.mfa_reset', async (db) => {
      const rows = await db<OperatorRow[]>`
        update identity.operators o set totp_secret = null, totp_key_version = null, totp_enrolled_at = null
        where o.id = ${id} returning ${db.unsafe(OPERATOR_COLUMNS)}`;
      await this.#revokeSessions(db, id, null);
      return rows;
    });
  }

  async #adminUpdate(
    ctx: AdminContext,
    id: string,
    action: 'operator.unlock' | 'operator.disable' | 'operator.mfa_reset',
    update: (db: Sql) => Promise<OperatorRow[]>,
  ): Promise<OperatorView> {
    const row = await this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const [row] = await update(db);
        if (row)
          await audit.insert(db, [accessEvent(ctx, action, { type: 'operator', id }, row.merchant_id)]);
        return row;
      }),
    );
    if (!row) throw new CardholdError('operator_not_found');
    return view(row);
  }

  // ---------------------------------------------------------------------------------------------------
  // Login: password, then TOTP

  /**
   * The password step. A correct password for an account that is neither locked nor disabled gets a
   * single-use challenge for `confirmMfa` (and, before enrolment, the provisioning URI of a new TOTP
   * secret); it never gets a session. Everything else (unknown user, wrong password, locked or disabled
   * account) is the same `invalid_credentials`, after the same argon2id work.
   */
  async login(username: string, password: string, origin: Origin): Promise<LoginStep> {
    const name = normalizeUsername(username);
    const row = isValidUsername(name)
      ? (
          await this.#sql<OperatorRow[]>`
            select ${this.#sql.unsafe(OPERATOR_COLUMNS)} from identity.operators o where o.username = ${name}`
        )[0]
      : undefined;
    // Always one argon2id verification, so that timing does not tell unknown users from wrong passwords.
    const passwordOk = await verifyPassword(row?.password_hash ?? (await dummyPasswordHash()), password);
    const now = this.#now();
    if (!row) {
      // The name might be a password typed into the wrong field: recorded only as a keyed hash.
      await recordRefusal(this.#trail, {
        ...authFailure({ type: 'anonymous', id: this.#trail.keyedHash(`username:${name}`) }, origin),
        reason: 'operator_unknown',
      });
      throw new CardholdError('invalid_credentials');
    }
    if (row.disabled_at) return this.#refuse(row, origin, 'operator_disabled');
    if (row.locked_until && row.locked_until > now) return this.#refuse(row, origin, 'locked');
    if (!passwordOk) return this.#fail(row, origin, 'invalid_password');

    if (needsRehash(row.password_hash)) {
      const rehashed = await hashPassword(password);
      await this.#sql`update identity.operators set password_hash = ${rehashed} where id = ${row.id}`;
    }
    const token = `mfc_${randomBase62(32)}`;
    const challengeId = `mfa_${randomBase62()}`;
    const expiresAt = new Date(now.getTime() + CHALLENGE_MS);
    let secret: Buffer | undefined;
    try {
      let pending: Buffer | null = null;
      if (!row.totp_enrolled_at) {
        secret = newTotpSecret();
        pending = this.#totpKey.seal(secret, challengeBinding(challengeId, row.id));
      }
      await this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        await db`delete from identity.operator_challenges
          where operator_id = ${row.id} and (consumed_at is not null or expires_at <= ${now})`;
        await db`insert into identity.operator_challenges
            (id, operator_id, token_hash, pending_totp_secret, totp_key_version, created_at, expires_at)
          values (${challengeId}, ${row.id}, ${sha256(token)}, ${pending},
            ${pending ? this.#totpKey.version : null}, ${now}, ${expiresAt})`;
      });
      if (secret) {
        return {
          stage: 'mfa_enrolment',
          challengeToken: new Secret(token),
          enrolmentUri: provisioningUri(secret, row.username),
          expiresAt,
        };
      }
      return { stage: 'mfa_required', challengeToken: new Secret(token), expiresAt };
    } finally {
      secret?.fill(0);
    }
  }

  /**
   * The TOTP step: completes enrolment (first login) or verification, and opens a session whose JWT
   * says `amr: ['pwd', 'otp']`. A wrong or replayed code counts towards the lockout like a wrong
   * password; a code is accepted only for a time step after the last one accepted.
   */
  async confirmMfa(challengeToken: string, code: string, origin: Origin): Promise<OperatorSession> {
    const now = this.#now();
    const found = /^mfc_[0-9A-Za-z]{43}$/.test(challengeToken)
      ? (
          await this.#sql<(OperatorRow & ChallengeRow)[]>`
            select ${this.#sql.unsafe(OPERATOR_COLUMNS)}, o.password_changed_at,
              c.id as challenge_id, c.pending_totp_secret, c.totp_key_version as challenge_key_version,
              c.created_at as challenge_created_at, c.expires_at, c.consumed_at
            from identity.operator_challenges c join identity.operators o on o.id = c.operator_id
            where c.token_hash = ${sha256(challengeToken)}`
        )[0]
      : undefined;
    if (
      !found ||
      found.consumed_at ||
      found.expires_at <= now ||
      found.password_changed_at > found.challenge_created_at
    ) {
      const actor: Actor = found
        ? { type: 'user', id: found.id }
        : { type: 'anonymous', id: this.#trail.keyedHash(challengeToken) };
      await recordRefusal(this.#trail, {
        ...authFailure(actor, origin, found),
        reason: 'mfa_challenge_invalid',
      });
      throw new CardholdError('mfa_challenge_invalid');
    }
    const row = found;
    if (row.disabled_at) return this.#refuse(row, origin, 'operator_disabled');
    if (row.locked_until && row.locked_until > now) return this.#refuse(row, origin, 'locked');

    const enrolling = row.pending_totp_secret !== null;
    if (enrolling && row.totp_enrolled_at) {
      // Two enrolment challenges were handed out and the other one completed: this one is void.
      await recordRefusal(this.#trail, {
        ...authFailure({ type: 'user', id: row.id }, origin, row),
        reason: 'mfa_challenge_invalid',
      });
      throw new CardholdError('mfa_challenge_invalid');
    }
    let secret: Buffer;
    if (row.pending_totp_secret && row.challenge_key_version !== null) {
      secret = this.#totpKey.open(
        row.pending_totp_secret,
        row.challenge_key_version,
        challengeBinding(row.challenge_id, row.id),
      );
    } else if (row.totp_secret && row.totp_key_version !== null) {
      secret = this.#totpKey.open(row.totp_secret, row.totp_key_version, operatorBinding(row.id));
    } else {
      throw new CardholdError('mfa_challenge_invalid');
    }
    let check: TotpCheck;
    let sealed: Buffer | undefined;
    try {
      check = checkTotp(secret, code, now, row.last_totp_step === null ? null : Number(row.last_totp_step));
      if (check.ok && enrolling) sealed = this.#totpKey.seal(secret, operatorBinding(row.id));
    } finally {
      secret.fill(0);
    }
    if (!check.ok) return this.#fail(row, origin, check.reason);

    const step = check.step;
    const sid = `sid_${randomBase62()}`;
    const amr: AuthenticationMethod[] = ['pwd', 'otp'];
    const who = { actor: { type: 'user' as const, id: row.id }, origin };
    let updated: OperatorRow;
    try {
      updated = await this.#trail.withLane((audit) =>
        this.#sql.begin(async (tx) => {
          const db = tx as unknown as Sql;
          // The step only moves forward: of two concurrent uses of one code, one wins.
          const rows = await db<OperatorRow[]>`
            update identity.operators o set last_totp_step = ${step}, failed_attempts = 0, locked_until = null,
              last_login_at = ${now}
              ${
                sealed
                  ? db`, totp_secret = ${sealed}, totp_key_version = ${this.#totpKey.version}, totp_enrolled_at = ${now}`
                  : db``
              }
            where o.id = ${row.id} and o.disabled_at is null
              and (o.locked_until is null or o.locked_until <= ${now})
              and (o.last_totp_step is null or o.last_totp_step < ${step})
              and ${sealed ? db`o.totp_enrolled_at is null` : db`o.totp_enrolled_at is not null`}
            returning ${db.unsafe(OPERATOR_COLUMNS)}`;
          if (!rows[0]) throw new Refusal('totp_replayed');
          const consumed = await db`
            update identity.operator_challenges set consumed_at = ${now}, pending_totp_secret = null
            where id = ${row.challenge_id} and consumed_at is null returning id`;
          if (consumed.length === 0) throw new Refusal('mfa_challenge_invalid');
          await db`
            insert into identity.operator_sessions (sid, operator_id, amr, mfa_at, created_at, last_seen_at)
            values (${sid}, ${row.id}, ${amr}, ${now}, ${now}, ${now})`;
          const events: AuditEvent[] = [];
          if (sealed) {
            events.push(
              accessEvent(who, 'operator.mfa_enrol', { type: 'operator', id: row.id }, row.merchant_id, {
                details: { method: 'totp' },
              }),
            );
          }
          events.push(
            accessEvent(who, 'operator.login', { type: 'operator', id: row.id }, row.merchant_id, {
              details: { amr: amr.join(' '), session: sid },
            }),
          );
          await audit.insert(db, events);
          return rows[0];
        }),
      );
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      if (error.reason === 'totp_replayed') return this.#fail(row, origin, 'totp_replayed');
      await recordRefusal(this.#trail, { ...authFailure(who.actor, origin, row), reason: error.reason });
      throw new CardholdError('mfa_challenge_invalid');
    }
    const signed = await this.#tokens.sign({
      sub: updated.id,
      roles: updated.roles,
      merchantId: updated.merchant_id,
      amr,
      mfaAt: now,
      sid,
    });
    return {
      token: signed.token,
      sid,
      expiresAt: signed.expiresAt,
      operator: view(updated),
      passwordChangeRequired: updated.password_change_required,
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Sessions

  /**
   * Verifies a session JWT and its server-side session (not ended, not idle for more than 15 minutes,
   * not older than 12 hours, its operator not disabled, its signing key not retired) and extends the
   * idle clock. Roles and merchant come from the account as it is now. Refusals are `session_invalid`
   * and recorded. A principal whose password must change holds no permission. `mfaAt` is when the
   * session last passed TOTP (login or `stepUp`), which the authorizer requires for card data, keys and
   * the audit trail.
   */
  async authenticate(token: string, origin: Origin): Promise<OperatorPrincipal> {
    return authenticateSession(
      { sql: this.#sql, trail: this.#trail, now: this.#now, verify: (t) => this.#tokens.verify(t) },
      token,
      origin,
    );
  }

  /** Extends an active session's idle clock; `session_invalid` if it is ended, idle or too old. */
  async touch(sid: string): Promise<void> {
    const rows = await touchSession(this.#sql, sid, this.#now(), {});
    if (rows.length === 0) throw new CardholdError('session_invalid');
  }

  /** A fresh 15-minute JWT for a live session (which `authenticate` also extends). */
  async refresh(token: string, origin: Origin): Promise<{ token: Secret<string>; expiresAt: Date }> {
    const principal = await this.authenticate(token, origin);
    const { token: fresh, expiresAt } = await this.#tokens.sign({
      sub: principal.id,
      roles: [...principal.roles],
      merchantId: principal.merchantId,
      amr: principal.amr,
      mfaAt: principal.mfaAt,
      sid: principal.sid,
    });
    return { token: fresh, expiresAt };
  }

  /**
   * Re-verifies TOTP inside a live session (step-up, e.g. before revealing a card number, which wants a
   * second factor in the last 15 minutes): moves the session's `mfaAt` to now. A wrong or replayed code
   * counts towards the lockout.
   */
  async stepUp(principal: OperatorPrincipal, code: string, origin: Origin): Promise<Date> {
    const row = await this.#find(principal.id);
    if (!row) throw new CardholdError('operator_not_found');
    const now = this.#now();
    if (row.disabled_at) return this.#refuse(row, origin, 'operator_disabled');
    if (row.locked_until && row.locked_until > now) return this.#refuse(row, origin, 'locked');
    if (!row.totp_secret || row.totp_key_version === null) throw new CardholdError('mfa_required');
    const secret = this.#totpKey.open(row.totp_secret, row.totp_key_version, operatorBinding(row.id));
    let check: TotpCheck;
    try {
      check = checkTotp(secret, code, now, row.last_totp_step === null ? null : Number(row.last_totp_step));
    } finally {
      secret.fill(0);
    }
    if (!check.ok) return this.#fail(row, origin, check.reason);
    const step = check.step;
    const who = { actor: { type: 'user' as const, id: row.id }, origin };
    try {
      await this.#trail.withLane((audit) =>
        this.#sql.begin(async (tx) => {
          const db = tx as unknown as Sql;
          const rows = await db`
            update identity.operators set last_totp_step = ${step}, failed_attempts = 0
            where id = ${row.id} and (last_totp_step is null or last_totp_step < ${step}) returning id`;
          if (rows.length === 0) throw new Refusal('totp_replayed');
          const sessions = await db`
            update identity.operator_sessions set mfa_at = ${now}, last_seen_at = ${now}
            where sid = ${principal.sid} and operator_id = ${row.id} and revoked_at is null returning sid`;
          if (sessions.length === 0) throw new CardholdError('session_invalid');
          await audit.insert(db, [
            accessEvent(who, 'operator.step_up', { type: 'operator', id: row.id }, row.merchant_id, {
              details: { session: principal.sid },
            }),
          ]);
        }),
      );
    } catch (error) {
      if (error instanceof Refusal) return this.#fail(row, origin, 'totp_replayed');
      throw error;
    }
    return now;
  }

  /** Ends the session at once, on every replica. */
  async logout(principal: OperatorPrincipal, origin: Origin): Promise<void> {
    const now = this.#now();
    await this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const rows = await db`update identity.operator_sessions set revoked_at = ${now}
          where sid = ${principal.sid} and revoked_at is null returning sid`;
        if (rows.length > 0) {
          await audit.insert(db, [
            accessEvent(
              { actor: { type: 'user', id: principal.id }, origin },
              'operator.logout',
              { type: 'operator', id: principal.id },
              principal.merchantId,
              { details: { session: principal.sid } },
            ),
          ]);
        }
      }),
    );
  }

  async #revokeSessions(db: Sql, operatorId: string, except: string | null): Promise<number> {
    const rows = await db`update identity.operator_sessions set revoked_at = ${this.#now()}
      where operator_id = ${operatorId} and revoked_at is null
        ${except ? db`and sid <> ${except}` : db``}
      returning sid`;
    return rows.length;
  }

  // ---------------------------------------------------------------------------------------------------
  // Passwords

  /**
   * The operator's own change: the current password is required (a wrong one counts towards the
   * lockout), the new one meets the policy and is none of the last four. Other sessions end.
   */
  async changePassword(
    principal: OperatorPrincipal,
    currentPassword: string,
    newPassword: string,
    origin: Origin,
  ): Promise<void> {
    const row = await this.#find(principal.id);
    if (!row) throw new CardholdError('operator_not_found');
    const ok = await verifyPassword(row.password_hash, currentPassword);
    const now = this.#now();
    if (row.disabled_at) return this.#refuse(row, origin, 'operator_disabled');
    if (row.locked_until && row.locked_until > now) return this.#refuse(row, origin, 'locked');
    if (!ok) return this.#fail(row, origin, 'invalid_password');
    await this.#setPassword(row, newPassword, {
      who: { actor: { type: 'user', id: row.id }, origin },
      by: 'self',
      keepSession: principal.sid,
    });
  }

  /**
   * An administrator's reset (after confirming the person's identity): the policy and history apply,
   * every session ends, and the operator must change the password at the next login (PCI DSS 8.3.5).
   */
  async resetPassword(ctx: AdminContext, id: string, newPassword: string): Promise<void> {
    const row = await this.#find(id);
    if (!row) throw new CardholdError('operator_not_found');
    await this.#setPassword(row, newPassword, { who: ctx, by: 'administrator', keepSession: null });
  }

  async #setPassword(
    row: OperatorRow,
    newPassword: string,
    how: { who: AdminContext; by: 'self' | 'administrator'; keepSession: string | null },
  ): Promise<void> {
    const field = how.by === 'self' ? 'new_password' : 'password';
    checkPasswordPolicy(newPassword, row.username, field);
    const history = await this.#sql<{ password_hash: string }[]>`
      select password_hash from identity.password_history where operator_id = ${row.id}
      order by id desc limit ${PASSWORD_HISTORY}`;
    for (const { password_hash } of history) {
      if (await verifyPassword(password_hash, newPassword)) {
        throw new CardholdError('password_reused', { field });
      }
    }
    const passwordHash = await hashPassword(newPassword);
    const now = this.#now();
    await this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        await db`update identity.operators set password_hash = ${passwordHash}, password_changed_at = ${now},
            password_change_required = ${how.by === 'administrator'}
          where id = ${row.id}`;
        await db`insert into identity.password_history (operator_id, password_hash, created_at)
          values (${row.id}, ${passwordHash}, ${now})`;
        await db`delete from identity.password_history where operator_id = ${row.id} and id not in (
            select id from identity.password_history where operator_id = ${row.id}
            order by id desc limit ${PASSWORD_HISTORY})`;
        const revoked = await this.#revokeSessions(db, row.id, how.keepSession);
        await audit.insert(db, [
          accessEvent(
            how.who,
            'operator.password_change',
            { type: 'operator', id: row.id },
            row.merchant_id,
            {
              details: { by: how.by, sessions_ended: revoked },
            },
          ),
        ]);
      }),
    );
  }

  // ---------------------------------------------------------------------------------------------------
  // Session-signing keys

  /** A new signing key; older keys still verify until retired. */
  async rotateSessionKey(ctx: AdminContext): Promise<{ kid: string }> {
    try {
      const kid = await this.#trail.withLane((audit) =>
        this.#sql.begin(async (tx) => {
          const db = tx as unknown as Sql;
          const kid = await this.#tokens.rotate(db);
          await audit.insert(db, [
            accessEvent(ctx, 'operator_key.create', { type: 'session_signing_key', id: kid }, null),
          ]);
          return kid;
        }),
      );
      return { kid };
    } catch (error) {
      await this.#tokens.reload().catch(() => undefined);
      throw error;
    }
  }

  /** Retires a key: the sessions it signed must log in again. Wait 15 minutes after a rotation. */
  async retireSessionKey(ctx: AdminContext, kid: string): Promise<void> {
    const retired = await this.#trail.withLane((audit) =>
      this.#sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        const retired = await this.#tokens.retire(kid, db);
        if (retired) {
          await audit.insert(db, [
            accessEvent(ctx, 'operator_key.retire', { type: 'session_signing_key', id: kid }, null),
          ]);
        }
        return retired;
      }),
    );
    if (!retired) throw new CardholdError('request_invalid', { field: 'kid', detail: 'No such active key' });
  }

  /** Drops key material from memory (on shutdown). */
  close(): void {
    this.#tokens.forget();
  }

  // ---------------------------------------------------------------------------------------------------
  // Refusals

  /** A refusal that does not count towards the lockout (the account is locked or disabled already). */
  async #refuse(row: OperatorRow, origin: Origin, reason: 'locked' | 'operator_disabled'): Promise<never> {
    await recordRefusal(this.#trail, { ...authFailure({ type: 'user', id: row.id }, origin, row), reason });
    throw new CardholdError('invalid_credentials');
  }

  /**
   * A failed password or code: counted (committed whether or not the audit trail can be written, so an
   * outage never buys free guesses), the 10th consecutive one locks the account for 30 minutes; then
   * recorded, and refused with `invalid_credentials`.
   */
  async #fail(
    row: OperatorRow,
    origin: Origin,
    reason: 'invalid_password' | 'invalid_totp' | 'totp_replayed',
  ): Promise<never> {
    const now = this.#now();
    const lockUntil = new Date(now.getTime() + LOCKOUT_MS);
    const [counted] = await this.#sql<{ failed_attempts: number; locked_until: Date | null }[]>`
      update identity.operators set
        failed_attempts = case when failed_attempts + 1 >= ${LOCKOUT_THRESHOLD} then 0 else failed_attempts + 1 end,
        locked_until = case when failed_attempts + 1 >= ${LOCKOUT_THRESHOLD} then ${lockUntil}::timestamptz
          else null end
      where id = ${row.id} and (locked_until is null or locked_until <= ${now})
      returning failed_attempts, locked_until`;
    const actor: Actor = { type: 'user', id: row.id };
    const lockedNow = counted?.locked_until != null;
    const events: AuditEvent[] = [
      {
        ...authFailure(actor, origin, row),
        reason: counted ? reason : 'locked',
        details: { failed_attempts: lockedNow ? LOCKOUT_THRESHOLD : (counted?.failed_attempts ?? 0) },
      },
    ];
    if (lockedNow) {
      events.push(
        accessEvent({ actor, origin }, 'operator.lock', { type: 'operator', id: row.id }, row.merchant_id, {
          details: { failures: LOCKOUT_THRESHOLD, locked_until: lockUntil.toISOString() },
        }),
      );
      this.#logger?.warn(
        { operator: row.id, locked_until: lockUntil.toISOString() },
        'operator account locked',
      );
    }
    await recordRefusal(this.#trail, ...events);
    throw new CardholdError('invalid_credentials');
  }
}

function checkRoles(roles: readonly string[], merchantId: string | null): OperatorRole[] {
  const unique = [...new Set(roles)];
  if (
    unique.length === 0 ||
    !unique.every((role): role is OperatorRole => (operatorRoles as readonly string[]).includes(role)) ||
    (merchantId !== null && unique.includes('security-admin'))
  ) {
    throw new CardholdError('operator_roles_invalid', { field: 'roles' });
  }
  return unique;
}

function view(row: OperatorRow): OperatorView {
  return {
    id: row.id,
    username: row.username,
    roles: row.roles,
    merchant_id: row.merchant_id,
    mfa_enrolled: row.totp_enrolled_at !== null,
    password_change_required: row.password_change_required,
    locked_until: iso(row.locked_until),
    created_at: row.created_at.toISOString(),
    last_login_at: iso(row.last_login_at),
    disabled_at: iso(row.disabled_at),
  };
}
