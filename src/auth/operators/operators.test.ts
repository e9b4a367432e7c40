import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { Sql } from 'postgres';
import { backends, startTestPlatform, type TestPlatform } from '../../../test/harness.ts';
import type { AuditTrail } from '../../audit/audit-trail.ts';
import type { Origin } from '../../audit/events.ts';
import { LocalKeyProvider } from '../../keys/local-key-provider.ts';
import { CardholdError } from '../../shared/errors.ts';
import { createLogger } from '../../shared/logger.ts';
import { randomBase62 } from '../../vault/identifiers.ts';
import {
  type AdminContext,
  IDLE_TIMEOUT_MS,
  LOCKOUT_MS,
  LOCKOUT_THRESHOLD,
  type OperatorSession,
  Operators,
} from './operators.ts';
import { secretFromUri, totpCode } from './totp.ts';

interface AuditRow {
  seq: string;
  actor_type: string;
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  merchant_id: string | null;
  outcome: string;
  reason: string | null;
  details: Record<string, unknown>;
}

const isError = (code: string, field?: string) => (error: unknown) => {
  assert.ok(error instanceof CardholdError, `a CardholdError (${String(error)})`);
  assert.equal(error.code, code);
  if (field !== undefined) assert.equal(error.field, field);
  return true;
};

for (const backend of backends()) {
  describe(`operator accounts (${backend})`, () => {
    let t: TestPlatform;
    let provider: LocalKeyProvider;
    let sql: Sql;
    let trail: AuditTrail;
    let operators: Operators;
    let clock = new Date();
    const now = () => clock;
    const advance = (ms: number) => {
      clock = new Date(clock.getTime() + ms);
    };
    /** Everything that must never appear in a record, a log line or an error. */
    const secrets = new Set<string>();
    const logFile = path.resolve('test-output', 'logs', `operators-service-${backend}-${process.pid}.log`);
    const origin: Origin = {
      origin: '127.0.0.1',
      userAgent: 'operators-test/1.0',
      requestId: 'operators-test',
    };
    const admin: AdminContext = { actor: { type: 'user', id: 'test-admin' }, origin };

    /** A fresh password that meets the policy, remembered for the leak scan. */
    const newPassword = () => {
      const password = `Pw-${randomBase62(12)}-9`;
      secrets.add(password);
      return password;
    };
    /** What an authenticator shows now; remembered for the leak scan. */
    const codeFor = (secret: Buffer) => {
      const code = totpCode(secret, clock);
      secrets.add(code);
      return code;
    };
    const rememberSecret = (secret: Buffer) => {
      secrets.add(secret.toString('hex'));
      secrets.add(secret.toString('base64'));
      secrets.add(secret.toString('base64url'));
    };
    const auditRows = (action: string, resourceId?: string) =>
      t.adminSql<AuditRow[]>`
        select seq, actor_type, actor_id, action, resource_type, resource_id, merchant_id, outcome, reason, details
        from audit.records where action = ${action}
          and (${resourceId ?? null}::text is null or resource_id = ${resourceId ?? null})
        order by seq`;
    const firstOf = async (rows: Promise<AuditRow[]>): Promise<AuditRow> => {
      const [row] = await rows;
      assert.ok(row, 'a record exists');
      return row;
    };
    const lastOf = async (rows: Promise<AuditRow[]>): Promise<AuditRow> => {
      const row = (await rows).at(-1);
      assert.ok(row, 'a record exists');
      return row;
    };
    const operatorRow = async (id: string) =>
      (
        await t.adminSql<
          {
            failed_attempts: number;
            locked_until: Date | null;
            last_totp_step: string | null;
            totp_secret: Buffer | null;
          }[]
        >`select failed_attempts, locked_until, last_totp_step, totp_secret from identity.operators where id = ${id}`
      )[0];

    /** An operator created by the administrator, enrolled and with the password changed: ready to use. */
    async function enrolledOperator(roles: string[] = ['operator-support']): Promise<{
      id: string;
      username: string;
      initial: string;
      password: string;
      secret: Buffer;
      session: OperatorSession;
    }> {
      const username = `op-${randomBase62(6).toLowerCase()}`;
      const initial = newPassword();
      const created = await operators.create(admin, { username, password: initial, roles });
      const step = await operators.login(username, initial, origin);
      assert.equal(step.stage, 'mfa_enrolment');
      const secret = secretFromUri(step.enrolmentUri.expose());
      rememberSecret(secret);
      const first = await operators.confirmMfa(step.challengeToken.expose(), codeFor(secret), origin);
      const principal = await operators.authenticate(first.token.expose(), origin);
      const password = newPassword();
      await operators.changePassword(principal, initial, password, origin);
      return { id: created.id, username, initial, password, secret, session: first };
    }

    /** Password and TOTP, in the next time step (a code is good for one login only). */
    async function logIn(username: string, password: string, secret: Buffer): Promise<OperatorSession> {
      advance(30_000);
      const step = await operators.login(username, password, origin);
      assert.equal(step.stage, 'mfa_required');
      return operators.confirmMfa(step.challengeToken.expose(), codeFor(secret), origin);
    }

    before(async () => {
      t = await startTestPlatform(backend, 'operators', { roles: ['api'] });
      provider = await LocalKeyProvider.open(t.dataDir);
      sql = t.platform.services.apiSql as Sql;
      trail = t.platform.services.apiAudit?.trail as AuditTrail;
      const logger = createLogger({
        level: 'debug',
        destination: pino.destination({ dest: logFile, sync: true, mkdir: true }),
      });
      operators = await Operators.open({ sql, trail, provider, now, logger });
    });
    after(async () => {
      operators?.close();
      await provider?.close();
      await t?.close();
    });

    test('opening creates the TOTP-encryption and session-signing keys, recorded', async () => {
      const created = await auditRows('operator_key.create');
      assert.deepEqual(created.map((r) => r.resource_type).sort(), [
        'session_signing_key',
        'totp_encryption_key',
      ]);
      const [key] = await t.adminSql<
        { wrapped_key: Buffer }[]
      >`select wrapped_key from identity.operator_totp_keys`;
      assert.equal(key?.wrapped_key.length !== 32, true, 'stored wrapped, not as the raw 32 bytes');
    });

    test('bootstrap creates the first security administrator, and is refused once any operator exists', async () => {
      const password = newPassword();
      const root = await operators.bootstrap('Root.Admin', password);
      assert.equal(root.username, 'root.admin');
      assert.deepEqual(root.roles, ['security-admin']);
      assert.equal(root.merchant_id, null);
      assert.equal(root.mfa_enrolled, false);
      assert.equal(root.password_change_required, false, 'the bootstrap password is the administrator’s own');
      assert.match(root.id, /^opr_[0-9A-Za-z]{22}$/);

      await assert.rejects(
        operators.bootstrap('second.admin', newPassword()),
        isError('operator_bootstrap_refused'),
      );
      await assert.rejects(
        operators.bootstrap('root.admin', newPassword()),
        isError('operator_bootstrap_refused'),
      );
      const [count] = await t.adminSql<{ n: number }[]>`select count(*)::int as n from identity.operators`;
      assert.equal(count?.n, 1);

      const records = await auditRows('operator.create');
      assert.equal(records[0]?.outcome, 'success');
      assert.equal(records[0]?.resource_id, root.id);
      assert.equal(records[0]?.actor_type, 'service');
      assert.deepEqual(records[0]?.details, {
        username: 'root.admin',
        roles: 'security-admin',
        bootstrap: true,
      });
      assert.deepEqual(
        records.slice(1).map((r) => [r.outcome, r.reason]),
        [
          ['failure', 'operator_bootstrap_refused'],
          ['failure', 'operator_bootstrap_refused'],
        ],
      );

      // The bootstrap administrator enrols at first login, then holds the security-admin permissions.
      const step = await operators.login('ROOT.admin', password, origin);
      assert.equal(step.stage, 'mfa_enrolment');
      const secret = secretFromUri(step.enrolmentUri.expose());
      rememberSecret(secret);
      const session = await operators.confirmMfa(step.challengeToken.expose(), codeFor(secret), origin);
      const principal = await operators.authenticate(session.token.expose(), origin);
      assert.equal(principal.kind, 'operator');
      assert.equal(principal.id, root.id);
      for (const permission of ['audit:read', 'keys:admin', 'users:admin', 'merchants:admin'] as const) {
        assert.ok(principal.permissions.has(permission), permission);
      }
    });

    test('create validates username, roles, merchant scope and password, naming the field', async () => {
      const password = newPassword();
      await assert.rejects(
        operators.create(admin, { username: 'x', password, roles: ['operator-viewer'] }),
        isError('username_invalid', 'username'),
      );
      await assert.rejects(
        operators.create(admin, { username: 'valid.name', password, roles: ['merchant-secret'] }),
        isError('operator_roles_invalid', 'roles'),
      );
      await assert.rejects(
        operators.create(admin, { username: 'valid.name', password, roles: [] }),
        isError('operator_roles_invalid', 'roles'),
      );
      await assert.rejects(
        operators.create(admin, {
          username: 'valid.name',
          password,
          roles: ['security-admin'],
          merchantId: t.merchantId,
        }),
        isError('operator_roles_invalid', 'roles'),
        'a security administrator is never confined to one merchant',
      );
      await assert.rejects(
        operators.create(admin, { username: 'valid.name', password: 'short1', roles: ['operator-viewer'] }),
        isError('password_length_invalid', 'password'),
      );
      await assert.rejects(
        operators.create(admin, {
          username: 'valid.name',
          password: 'nodigitsinthisone',
          roles: ['operator-viewer'],
        }),
        isError('password_too_weak', 'password'),
      );
      await assert.rejects(
        operators.create(admin, {
          username: 'valid.name42',
          password: 'Valid.Name42',
          roles: ['operator-viewer'],
        }),
        isError('password_matches_username', 'password'),
      );
      await assert.rejects(
        operators.create(admin, {
          username: 'valid.name',
          password,
          roles: ['operator-viewer'],
          merchantId: 'mer_0000000000000000000000',
        }),
        isError('merchant_not_found', 'merchant_id'),
      );

      const scoped = await operators.create(admin, {
        username: 'Support.Acme',
        password,
        roles: ['operator-support', 'operator-viewer', 'operator-support'],
        merchantId: t.merchantId,
      });
      assert.equal(scoped.username, 'support.acme');
      assert.deepEqual(scoped.roles, ['operator-support', 'operator-viewer']);
      assert.equal(scoped.merchant_id, t.merchantId);
      assert.equal(scoped.password_change_required, true, 'PCI DSS 8.3.5: set by an administrator');
      await assert.rejects(
        operators.create(admin, {
          username: 'SUPPORT.acme',
          password: newPassword(),
          roles: ['operator-viewer'],
        }),
        isError('operator_exists', 'username'),
      );
      assert.deepEqual(await operators.get(admin, scoped.id), scoped);
      await assert.rejects(operators.get(admin, 'opr_0000000000000000000000'), isError('operator_not_found'));
      assert.deepEqual(
        (await auditRows('operator.read')).map((r) => [r.outcome, r.reason]),
        [
          ['success', null],
          ['failure', 'operator_not_found'],
        ],
      );
      const record = await firstOf(auditRows('operator.create', scoped.id));
      assert.equal(record.actor_id, 'test-admin');
      assert.equal(record.merchant_id, t.merchantId);
    });

    test('MFA: enrolment at first login, then verification; the TOTP secret is stored encrypted', async () => {
      const username = 'ada.enrol';
      const password = newPassword();
      const created = await operators.create(admin, { username, password, roles: ['operator-support'] });

      const step = await operators.login(username, password, origin);
      assert.equal(step.stage, 'mfa_enrolment');
      assert.equal(JSON.stringify(step).includes('otpauth'), false, 'the URI and challenge render redacted');
      const secret = secretFromUri(step.enrolmentUri.expose());
      rememberSecret(secret);
      assert.equal(
        (await operatorRow(created.id))?.totp_secret,
        null,
        'nothing enrolled before confirmation',
      );
      // The pending secret waits, sealed, on the challenge.
      const [pending] = await t.adminSql<{ pending_totp_secret: Buffer }[]>`
        select pending_totp_secret from identity.operator_challenges where operator_id = ${created.id}`;
      assert.ok(pending && !pending.pending_totp_secret.includes(secret));

      // A wrong code does not enrol and counts as a failure.
      const good = codeFor(secret);
      const wrong = String((Number(good) + 1) % 1_000_000).padStart(6, '0');
      secrets.add(wrong);
      await assert.rejects(
        operators.confirmMfa(step.challengeToken.expose(), wrong, origin),
        isError('invalid_credentials'),
      );
      assert.equal((await operatorRow(created.id))?.failed_attempts, 1);

      const session = await operators.confirmMfa(step.challengeToken.expose(), good, origin);
      assert.equal(session.operator.mfa_enrolled, true);
      assert.equal(session.passwordChangeRequired, true);
      const row = await operatorRow(created.id);
      assert.equal(row?.failed_attempts, 0, 'a full login resets the count');
      assert.ok(row?.totp_secret, 'enrolled');
      assert.ok(!row.totp_secret.includes(secret), 'stored as ciphertext');
      assert.ok(row.totp_secret.length >= secret.length + 28, 'iv and tag around the ciphertext');
      const [consumed] = await t.adminSql<{ pending_totp_secret: Buffer | null }[]>`
        select pending_totp_secret from identity.operator_challenges where operator_id = ${created.id}`;
      assert.equal(consumed?.pending_totp_secret, null, 'the pending copy is gone once used');

      const verified = await operators.authenticate(session.token.expose(), origin);
      assert.deepEqual(verified.amr, ['pwd', 'otp']);
      assert.ok(verified.mfaAt instanceof Date);
      assert.equal(
        verified.permissions.size,
        0,
        'no permission until the administrator’s password is changed',
      );

      const enrol = await firstOf(auditRows('operator.mfa_enrol', created.id));
      assert.equal(enrol.actor_type, 'user');
      assert.equal(enrol.actor_id, created.id);
      const logins = await auditRows('operator.login', created.id);
      assert.equal(logins.length, 1);
      assert.equal(logins[0]?.details['amr'], 'pwd otp');
      const failures = await auditRows('auth.failure', created.id);
      assert.deepEqual(
        failures.map((r) => r.reason),
        ['invalid_totp'],
      );

      // The next login asks for a code, and shows no URI again.
      advance(30_000);
      const again = await operators.login(username, password, origin);
      assert.equal(again.stage, 'mfa_required');
      assert.equal('enrolmentUri' in again, false);
      const second = await operators.confirmMfa(again.challengeToken.expose(), codeFor(secret), origin);
      assert.equal((await operators.authenticate(second.token.expose(), origin)).id, created.id);

      // A challenge is single-use.
      advance(30_000);
      await assert.rejects(
        operators.confirmMfa(again.challengeToken.expose(), codeFor(secret), origin),
        isError('mfa_challenge_invalid'),
      );
      // And short-lived.
      const late = await operators.login(username, password, origin);
      advance(5 * 60_000);
      await assert.rejects(
        operators.confirmMfa(late.challengeToken.expose(), codeFor(secret), origin),
        isError('mfa_challenge_invalid'),
      );
      await assert.rejects(
        operators.confirmMfa('mfc_nonsense', '123456', origin),
        isError('mfa_challenge_invalid'),
      );
    });

    test('a replayed TOTP code is refused (same step), counted, and two concurrent uses let one through', async () => {
      const op = await enrolledOperator();
      advance(30_000);
      const first = await operators.login(op.username, op.password, origin);
      const code = codeFor(op.secret);
      await operators.confirmMfa(first.challengeToken.expose(), code, origin);
      const before = (await operatorRow(op.id))?.failed_attempts ?? -1;

      // The same code, in the same step, with a fresh challenge: a replay.
      const second = await operators.login(op.username, op.password, origin);
      await assert.rejects(
        operators.confirmMfa(second.challengeToken.expose(), code, origin),
        isError('invalid_credentials'),
      );
      assert.equal((await operatorRow(op.id))?.failed_attempts, before + 1);
      // Still a replay 20 seconds later, while the code is within the window.
      advance(20_000);
      await assert.rejects(
        operators.confirmMfa(second.challengeToken.expose(), code, origin),
        isError('invalid_credentials'),
      );
      const reasons = (await auditRows('auth.failure', op.id)).map((r) => r.reason);
      assert.deepEqual(reasons.slice(-2), ['totp_replayed', 'totp_replayed']);

      // Two challenges racing with one fresh code: exactly one session.
      advance(30_000);
      const a = await operators.login(op.username, op.password, origin);
      const b = await operators.login(op.username, op.password, origin);
      const fresh = codeFor(op.secret);
      const results = await Promise.allSettled([
        operators.confirmMfa(a.challengeToken.expose(), fresh, origin),
        operators.confirmMfa(b.challengeToken.expose(), fresh, origin),
      ]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    });

    test(`lockout: ${LOCKOUT_THRESHOLD} failures of password or code lock for 30 minutes, answered like a wrong password`, async () => {
      const op = await enrolledOperator();
      // A full login resets the count; start from zero.
      await logIn(op.username, op.password, op.secret);
      assert.equal((await operatorRow(op.id))?.failed_attempts, 0);

      const wrongPassword = `${op.password}x`;
      secrets.add(wrongPassword);
      for (let i = 0; i < 6; i++) {
        await assert.rejects(
          operators.login(op.username, wrongPassword, origin),
          isError('invalid_credentials'),
        );
      }
      // The right password gives a challenge (not locked yet) but does not reset the count: otherwise the
      // password alone would buy unlimited guesses at the code.
      advance(30_000);
      const step = await operators.login(op.username, op.password, origin);
      const wrongCode = String((Number(codeFor(op.secret)) + 500_000) % 1_000_000).padStart(6, '0');
      secrets.add(wrongCode);
      for (let i = 0; i < 3; i++) {
        await assert.rejects(
          operators.confirmMfa(step.challengeToken.expose(), wrongCode, origin),
          isError('invalid_credentials'),
        );
      }
      let row = await operatorRow(op.id);
      assert.equal(row?.failed_attempts, 9);
      assert.equal(row?.locked_until, null, 'nine failures do not lock');

      // The tenth locks, for 30 minutes from then.
      const lockedAt = clock.getTime();
      const tenth = await operators.login(op.username, wrongPassword, origin).catch((e: unknown) => e);
      isError('invalid_credentials')(tenth);
      row = await operatorRow(op.id);
      assert.equal(row?.locked_until?.getTime(), lockedAt + LOCKOUT_MS);
      const lock = await firstOf(auditRows('operator.lock', op.id));
      assert.equal(lock.details['failures'], LOCKOUT_THRESHOLD);

      // Locked: the right password and a valid code get exactly what a wrong password gets.
      advance(60_000);
      const locked = await operators.login(op.username, op.password, origin).catch((e: unknown) => e);
      const wrong = await operators.login(op.username, wrongPassword, origin).catch((e: unknown) => e);
      const unknown = await operators.login('nobody.here', op.password, origin).catch((e: unknown) => e);
      for (const e of [locked, wrong, unknown]) {
        assert.ok(e instanceof CardholdError);
        assert.deepEqual(
          [e.code, e.status, e.message, e.detail, e.field],
          [
            'invalid_credentials',
            401,
            'The username, password or code is not valid',
            'The username, password or code is not valid',
            undefined,
          ],
        );
      }
      await assert.rejects(
        operators.confirmMfa(step.challengeToken.expose(), codeFor(op.secret), origin),
        isError('invalid_credentials'),
        'an earlier challenge does not get around the lock',
      );
      const lockedReasons = (await auditRows('auth.failure', op.id)).map((r) => r.reason).slice(-3);
      assert.deepEqual(lockedReasons, ['locked', 'locked', 'locked']);
      assert.equal(
        (await operatorRow(op.id))?.locked_until?.getTime(),
        lockedAt + LOCKOUT_MS,
        'not extended',
      );

      // Still locked one second before the 30 minutes are up; open at 30 minutes.
      clock = new Date(lockedAt + LOCKOUT_MS - 1_000);
      await assert.rejects(operators.login(op.username, op.password, origin), isError('invalid_credentials'));
      clock = new Date(lockedAt + LOCKOUT_MS);
      const session = await operators
        .login(op.username, op.password, origin)
        .then((s) => operators.confirmMfa(s.challengeToken.expose(), codeFor(op.secret), origin));
      assert.equal((await operators.authenticate(session.token.expose(), origin)).id, op.id);
      row = await operatorRow(op.id);
      assert.equal(row?.failed_attempts, 0);
      assert.equal(row?.locked_until, null);
    });

    test('an administrator can lift a lockout early; a disabled operator is refused and its sessions end', async () => {
      const op = await enrolledOperator();
      const session = await logIn(op.username, op.password, op.secret);
      for (let i = 0; i < LOCKOUT_THRESHOLD; i++) {
        await operators.login(op.username, 'wrong-password-1', origin).catch(() => undefined);
      }
      assert.ok((await operatorRow(op.id))?.locked_until);
      const unlocked = await operators.unlock(admin, op.id);
      assert.equal(unlocked.locked_until, null);
      await logIn(op.username, op.password, op.secret);

      // A lost authenticator: the administrator removes it, the next login enrols a new one.
      const enrolledSession = await logIn(op.username, op.password, op.secret);
      const reset = await operators.resetMfa(admin, op.id);
      assert.equal(reset.mfa_enrolled, false);
      await assert.rejects(
        operators.authenticate(enrolledSession.token.expose(), origin),
        isError('session_invalid'),
      );
      advance(30_000);
      const enrol = await operators.login(op.username, op.password, origin);
      assert.equal(enrol.stage, 'mfa_enrolment');
      const newSecret = secretFromUri(enrol.enrolmentUri.expose());
      rememberSecret(newSecret);
      await assert.rejects(
        operators.confirmMfa(enrol.challengeToken.expose(), codeFor(op.secret), origin),
        isError('invalid_credentials'),
        'the old authenticator no longer works',
      );
      const session2 = await operators.confirmMfa(enrol.challengeToken.expose(), codeFor(newSecret), origin);
      assert.equal((await operators.authenticate(session2.token.expose(), origin)).id, op.id);
      op.secret = newSecret;
      assert.equal((await auditRows('operator.mfa_reset', op.id)).length, 1);

      await operators.disable(admin, op.id);
      await assert.rejects(
        operators.authenticate(session.token.expose(), origin),
        isError('session_invalid'),
      );
      advance(30_000);
      await assert.rejects(operators.login(op.username, op.password, origin), isError('invalid_credentials'));
      assert.equal((await auditRows('auth.failure', op.id)).at(-1)?.reason, 'operator_disabled');
      assert.equal((await auditRows('operator.disable', op.id)).length, 1);
      assert.equal((await auditRows('operator.unlock', op.id)).length, 1);
    });

    test('step-up: a fresh TOTP inside a session moves its MFA time; a replayed code is refused', async () => {
      const op = await enrolledOperator();
      const session = await logIn(op.username, op.password, op.secret);
      const principal = await operators.authenticate(session.token.expose(), origin);
      const loginMfa = principal.mfaAt?.getTime();
      assert.equal(loginMfa, clock.getTime());
      advance(10 * 60_000);
      const code = codeFor(op.secret);
      const at = await operators.stepUp(principal, code, origin);
      assert.equal(at.getTime(), clock.getTime());
      assert.equal(
        (await operators.authenticate(session.token.expose(), origin)).mfaAt?.getTime(),
        clock.getTime(),
      );
      await assert.rejects(
        operators.stepUp(principal, code, origin),
        isError('invalid_credentials'),
        'replay',
      );
      assert.equal((await auditRows('auth.failure', op.id)).at(-1)?.reason, 'totp_replayed');
      assert.equal((await auditRows('operator.step_up', op.id)).length, 1);
    });

    test('idle timeout: activity keeps a session alive; 15 minutes of silence ends it', async () => {
      const op = await enrolledOperator();
      const session = await logIn(op.username, op.password, op.secret);
      let token = session.token.expose();

      // Active every 14 minutes, refreshing the 15-minute JWT: alive well past 15 minutes.
      for (let i = 0; i < 3; i++) {
        advance(14 * 60_000);
        const refreshed = await operators.refresh(token, origin);
        assert.ok(refreshed.expiresAt.getTime() > clock.getTime());
        token = refreshed.token.expose();
      }
      await operators.authenticate(token, origin);

      // touch() on its own: fine at 14:59 idle, refused past 15 minutes.
      advance(IDLE_TIMEOUT_MS - 1_000);
      await operators.touch(session.sid);
      advance(IDLE_TIMEOUT_MS + 1_000);
      await assert.rejects(operators.touch(session.sid), isError('session_invalid'));
      await assert.rejects(operators.refresh(token, origin), isError('session_invalid'));
    });

    test('a JWT that is valid but whose server-side session is idle, ended or too old is refused', async () => {
      const op = await enrolledOperator();
      // Idle: the JWT is kept alive (5 s clock tolerance aside) but the session was not touched.
      const idle = await logIn(op.username, op.password, op.secret);
      advance(IDLE_TIMEOUT_MS + 1_000);
      await assert.rejects(operators.authenticate(idle.token.expose(), origin), isError('session_invalid'));

      // Logged out: refused at once.
      const session = await logIn(op.username, op.password, op.secret);
      const principal = await operators.authenticate(session.token.expose(), origin);
      await operators.logout(principal, origin);
      await assert.rejects(
        operators.authenticate(session.token.expose(), origin),
        isError('session_invalid'),
      );
      assert.equal((await auditRows('operator.logout', op.id)).length, 1);

      // However active, 12 hours after login.
      const long = await logIn(op.username, op.password, op.secret);
      let token = long.token.expose();
      let refused: unknown;
      for (let minutes = 0; minutes <= 13 * 60 && !refused; minutes += 14) {
        advance(14 * 60_000);
        try {
          token = (await operators.refresh(token, origin)).token.expose();
        } catch (error) {
          refused = error;
        }
      }
      isError('session_invalid')(refused);
      const reasons = (await auditRows('auth.failure', op.id)).map((r) => r.reason);
      assert.ok(reasons.includes('session_invalid'));
    });

    test('passwords: the policy applies to changes, and none of the last four may be reused', async () => {
      const op = await enrolledOperator();
      const other = await logIn(op.username, op.password, op.secret);
      const session = await logIn(op.username, op.password, op.secret);
      const principal = await operators.authenticate(session.token.expose(), origin);

      await assert.rejects(
        operators.changePassword(principal, op.password, 'short1', origin),
        isError('password_length_invalid', 'new_password'),
      );
      await assert.rejects(
        operators.changePassword(principal, op.password, 'lettersonlylongenough', origin),
        isError('password_too_weak', 'new_password'),
      );
      const wrongCurrent = `${op.password}-not`;
      await assert.rejects(
        operators.changePassword(principal, wrongCurrent, newPassword(), origin),
        isError('invalid_credentials'),
      );
      assert.equal((await operatorRow(op.id))?.failed_attempts, 1, 'a wrong current password counts');

      // History: the administrator's initial password and op.password are already in it.
      const [initial] = await t.adminSql<{ n: number }[]>`
        select count(*)::int as n from identity.password_history where operator_id = ${op.id}`;
      assert.equal(initial?.n, 2);
      const p3 = newPassword();
      const p4 = newPassword();
      await operators.changePassword(principal, op.password, p3, origin);
      await operators.changePassword(principal, p3, p4, origin);
      // Now the last four are: initial, op.password, p3, p4 (current).
      await assert.rejects(
        operators.changePassword(principal, p4, p4, origin),
        isError('password_reused', 'new_password'),
        'the current password',
      );
      await assert.rejects(
        operators.changePassword(principal, p4, op.password, origin),
        isError('password_reused', 'new_password'),
      );
      const p5 = newPassword();
      await operators.changePassword(principal, p4, p5, origin);
      const [kept] = await t.adminSql<{ n: number }[]>`
        select count(*)::int as n from identity.password_history where operator_id = ${op.id}`;
      assert.equal(kept?.n, 4, 'only four hashes are kept');
      await assert.rejects(
        operators.changePassword(principal, p5, op.password, origin),
        isError('password_reused', 'new_password'),
        'op.password is still among the last four',
      );
      // The administrator's initial password has dropped out of the last four: allowed again.
      await operators.changePassword(principal, p5, op.initial, origin);

      // The session that changed the password lives on; the other session ended.
      await operators.authenticate(session.token.expose(), origin);
      await assert.rejects(operators.authenticate(other.token.expose(), origin), isError('session_invalid'));
      const changes = await auditRows('operator.password_change', op.id);
      assert.ok(changes.length >= 4);
      assert.equal(changes.at(-1)?.details['by'], 'self');
    });

    test('an administrator reset requires a change at the next login and ends every session', async () => {
      const op = await enrolledOperator();
      const session = await logIn(op.username, op.password, op.secret);
      const temporary = newPassword();
      await operators.resetPassword(admin, op.id, temporary);
      await assert.rejects(
        operators.authenticate(session.token.expose(), origin),
        isError('session_invalid'),
      );
      const after = await logIn(op.username, temporary, op.secret);
      assert.equal(after.passwordChangeRequired, true);
      const principal = await operators.authenticate(after.token.expose(), origin);
      assert.equal(principal.permissions.size, 0);
      await assert.rejects(
        operators.resetPassword(admin, op.id, op.password),
        isError('password_reused', 'password'),
      );
      await operators.changePassword(principal, temporary, newPassword(), origin);
      assert.ok((await operators.authenticate(after.token.expose(), origin)).permissions.has('tokens:read'));
    });

    test('session keys: rotation keeps sessions; retiring their key ends them; the JWKS has no private part', async () => {
      const op = await enrolledOperator();
      const session = await logIn(op.username, op.password, op.secret);
      const before = await operators.jwks();
      const { kid } = await operators.rotateSessionKey(admin);
      const principal = await operators.authenticate(session.token.expose(), origin);
      assert.equal(principal.id, op.id, 'a session signed by the previous key still verifies');
      const fresh = await operators.refresh(session.token.expose(), origin);
      const jwks = await operators.jwks();
      assert.equal(jwks.keys.length, before.keys.length + 1);
      for (const key of jwks.keys) assert.equal('d' in key, false);

      const oldKid = JSON.parse(
        Buffer.from(session.token.expose().split('.')[0] ?? '', 'base64url').toString(),
      ).kid;
      await operators.retireSessionKey(admin, oldKid);
      await assert.rejects(
        operators.authenticate(session.token.expose(), origin),
        isError('session_invalid'),
      );
      assert.equal(
        (await operators.authenticate(fresh.token.expose(), origin)).id,
        op.id,
        'signed by the new key',
      );
      assert.ok((await operators.jwks()).keys.every((k) => k.kid !== oldKid));
      assert.equal((await auditRows('operator_key.create', kid)).length, 1);
      assert.equal((await auditRows('operator_key.retire', oldKid)).length, 1);
    });

    test('an unknown username is recorded only as a keyed hash', async () => {
      const typedPasswordAsUsername = 'Hunter2-is-my-password-9';
      secrets.add(typedPasswordAsUsername);
      secrets.add(typedPasswordAsUsername.toLowerCase());
      await assert.rejects(
        operators.login(typedPasswordAsUsername, 'whatever-1234', origin),
        isError('invalid_credentials'),
      );
      const last = await lastOf(auditRows('auth.failure'));
      assert.equal(last.actor_type, 'anonymous');
      assert.match(last.actor_id, /^hk\d+_[A-Za-z0-9_-]{22}$/);
      assert.equal(last.reason, 'operator_unknown');
    });

    test('no password, TOTP secret or code appears in the audit trail, the logs or the identity tables', async () => {
      assert.ok(secrets.size > 30, 'the scan has something to look for');
      const records = await t.adminSql<{ row: string }[]>`
        select (to_jsonb(r) - 'hash' - 'prev_hash')::text as row from audit.records r order by seq`;
      const trailText = records.map((r) => r.row).join('\n');
      assert.ok(trailText.includes('operator.login'), 'the records were read');

      const logDir = path.resolve('test-output', 'logs');
      const logFiles = (await readdir(logDir)).filter(
        (f) => f === path.basename(logFile) || f.startsWith(`operators-${backend}-${process.pid}-`),
      );
      assert.ok(
        logFiles.length >= 2,
        `both the platform log and the service log are scanned: ${logFiles.join(', ')}`,
      );
      const logText = (await Promise.all(logFiles.map((f) => readFile(path.join(logDir, f), 'utf8')))).join(
        '\n',
      );
      assert.ok(logText.includes('operator account locked'), 'the service logged');

      const identity = await t.adminSql<{ row: string }[]>`
        select to_jsonb(o)::text as row from identity.operators o
        union all select to_jsonb(c)::text from identity.operator_challenges c
        union all select to_jsonb(h)::text from identity.password_history h
        union all select to_jsonb(s)::text from identity.operator_sessions s
        union all select to_jsonb(k)::text from identity.session_keys k`;
      const identityText = identity.map((r) => r.row).join('\n');

      for (const [where, text] of [
        ['audit trail', trailText],
        ['logs', logText],
        ['identity tables', identityText],
      ] as const) {
        for (const secret of secrets) {
          // Codes are six digits: look for them as whole numbers, not inside longer digit runs, as the
          // microseconds of a time stamp, or between the letters of hex (bytea, hashes), where six random
          // digits turn up by chance.
          const found = /^\d{6}$/.test(secret)
            ? new RegExp(`(?<![0-9A-Za-z.])${secret}(?![0-9A-Za-z])`).test(text)
            : text.includes(secret);
          assert.equal(found, false, `a secret (${secret.length} characters) appears in the ${where}`);
        }
      }
      for (const forbidden of ['password', 'totp_secret', 'otpauth://', 'code']) {
        assert.ok(
          records.every((r) => !Object.keys(JSON.parse(r.row).details ?? {}).includes(forbidden)),
          `no record detail is named ${forbidden}`,
        );
      }
    });
  });
}
