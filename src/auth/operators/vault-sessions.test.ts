import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { URI } from 'otpauth';
import { testCards } from '../../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../../test/harness.ts';
import type { Origin } from '../../audit/events.ts';
import { randomBase62 } from '../../vault/identifiers.ts';
import { MERCHANT_HEADER } from '../authenticate.ts';
import type { AdminContext, Operators } from './operators.ts';
import { SessionVerifier } from './session-verifier.ts';

interface AuditRow {
  actor_type: string;
  actor_id: string;
  outcome: string;
  reason: string | null;
  service: string;
  details: Record<string, unknown>;
}

/** A signed-in operator: their id and session token. */
interface SignedIn {
  id: string;
  token: string;
}

const REASON = 'Chargeback investigation, case 4711';

for (const backend of backends()) {
  describe(`operator sessions on the vault (${backend})`, () => {
    let t: TestPlatform;
    let operators: Operators;
    let admin: AdminContext;
    let tokenId: string;
    let support: SignedIn;
    let revealer: SignedIn;
    const origin: Origin = {
      origin: '127.0.0.1',
      userAgent: 'vault-sessions-test/1.0',
      requestId: 'vs-test',
    };

    const vault = <T = unknown>(method: string, path: string, token: string, body?: unknown) =>
      t.request<T>(method, `${t.vaultUrl}${path}`, {
        key: token,
        headers: { [MERCHANT_HEADER]: t.merchantId },
        ...(body === undefined ? {} : { body }),
      });
    const api = <T = unknown>(path: string, token: string | null, body?: unknown) =>
      t.request<T>('POST', `${t.apiUrl}${path}`, { key: token, ...(body === undefined ? {} : { body }) });
    const readToken = (token: string) => vault('GET', `/v1/tokens/${tokenId}`, token);
    const sessionFailures = (actorId: string) =>
      t.adminSql<AuditRow[]>`
        select actor_type, actor_id, outcome, reason, service, details from audit.records
        where action = 'auth.failure' and actor_id = ${actorId} order by seq`;

    /**
     * Creates an operator as the security administrator, then signs in on the api: password, TOTP
     * enrolment (otpauth), and the required password change. Before the change, the session holds no
     * permission on the vault either.
     */
    async function newOperator(roles: string[]): Promise<SignedIn> {
      const username = `op-${randomBase62(8).toLowerCase()}`;
      const initial = `Initial-${randomBase62(10)}-1`;
      const created = await operators.create(admin, { username, password: initial, roles });
      const login = await api<{ challenge_token: string; enrolment_uri: string }>('/v1/auth/login', null, {
        username,
        password: initial,
      });
      assert.equal(login.status, 200, login.text);
      const totp = URI.parse(login.json.enrolment_uri);
      if (!('generate' in totp)) throw new Error('not a TOTP URI');
      const mfa = await api<{ token: string; password_change_required: boolean }>('/v1/auth/mfa', null, {
        challenge_token: login.json.challenge_token,
        code: totp.generate(),
      });
      assert.equal(mfa.status, 200, mfa.text);
      assert.equal(mfa.json.password_change_required, true);
      const token = mfa.json.token;
      assert.equal((await readToken(token)).status, 403, 'no permission until the password is changed');
      const changed = await api('/v1/auth/password', token, {
        current_password: initial,
        new_password: `Changed-${randomBase62(10)}-2`,
      });
      assert.equal(changed.status, 204, changed.text);
      return { id: created.id, token };
    }

    before(async () => {
      t = await startTestPlatform(backend, 'vault-sessions');
      operators = t.platform.services.operators as Operators;
      const root = await operators.bootstrap('root-admin', `Bootstrap-${randomBase62(10)}-3`);
      admin = { actor: { type: 'user', id: root.id }, origin };
      const created = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
        body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
      });
      assert.equal(created.status, 201, created.text);
      tokenId = created.json.token.id;
      support = await newOperator(['operator-support']);
      revealer = await newOperator(['operator-reveal']);
    });
    after(async () => {
      await t?.close();
    });

    test('the vault runtime role reads only the columns the session check needs, and writes only last_seen_at', async () => {
      const sql = t.platform.services.vault!.sql;
      const denied = { code: '42501' };
      // Key material, password hashes and TOTP secrets are out of reach.
      await assert.rejects(sql`select wrapped_private_key from identity.session_keys`, denied);
      await assert.rejects(sql`select * from identity.session_keys`, denied);
      await assert.rejects(sql`select password_hash from identity.operators`, denied);
      await assert.rejects(sql`select totp_secret from identity.operators`, denied);
      await assert.rejects(sql`select totp_key_version, last_totp_step from identity.operators`, denied);
      await assert.rejects(sql`select * from identity.operators`, denied);
      await assert.rejects(sql`select * from identity.operator_totp_keys`, denied);
      await assert.rejects(sql`select * from identity.operator_challenges`, denied);
      await assert.rejects(sql`select * from identity.password_history`, denied);
      // No writes beyond the idle clock: no key, no revocation, no account change, no new session.
      await assert.rejects(sql`update identity.session_keys set retired_at = now()`, denied);
      await assert.rejects(sql`insert into identity.session_keys (kid) values ('osk_x')`, denied);
      await assert.rejects(sql`insert into identity.operator_sessions (sid) values ('sid_x')`, denied);
      await assert.rejects(sql`update identity.operator_sessions set revoked_at = null`, denied);
      await assert.rejects(sql`update identity.operator_sessions set mfa_at = now()`, denied);
      await assert.rejects(sql`update identity.operators set disabled_at = null`, denied);
      await assert.rejects(sql`delete from identity.operator_sessions`, denied);
      // What the verifier reads does work.
      const keys =
        await sql`select kid, public_key, environment from identity.session_keys where retired_at is null`;
      assert.ok(keys.length >= 1);
    });

    test('operator-support reads a masked token on the vault, and the vault extends the idle clock', async () => {
      const sid = decodeSid(support.token);
      await t.adminSql`update identity.operator_sessions set last_seen_at = last_seen_at - interval '5 minutes'
        where sid = ${sid}`;
      const [before] = await t.adminSql<{ last_seen_at: Date }[]>`
        select last_seen_at from identity.operator_sessions where sid = ${sid}`;
      const read = await readToken(support.token);
      assert.equal(read.status, 200, read.text);
      const body = read.json as Record<string, unknown>;
      assert.equal(body['last4'], testCards.visa.slice(-4));
      assert.equal('pan' in body, false, 'masked: no card number');
      const [after] = await t.adminSql<{ last_seen_at: Date }[]>`
        select last_seen_at from identity.operator_sessions where sid = ${sid}`;
      assert.ok(after && before && after.last_seen_at > before.last_seen_at, 'the session was touched');
    });

    test('operator-support cannot reveal (403); operator-reveal reveals with a reason, recorded', async () => {
      const refused = await vault('POST', `/v1/tokens/${tokenId}/reveal`, support.token, { reason: REASON });
      assert.equal(refused.status, 403, refused.text);
      const [denied] = await t.adminSql<AuditRow[]>`
        select actor_type, actor_id, outcome, reason, service, details from audit.records
        where action = 'access.denied' and actor_id = ${support.id} order by seq desc limit 1`;
      assert.equal(denied?.service, 'vault');
      assert.equal(denied?.reason, 'forbidden');

      const revealed = await vault<{ pan: string; object: string }>(
        'POST',
        `/v1/tokens/${tokenId}/reveal`,
        revealer.token,
        { reason: REASON },
      );
      assert.equal(revealed.status, 200);
      assert.equal(revealed.json.object, 'revealed_card');
      // Compared in memory only: the number is never written anywhere.
      assert.ok(revealed.json.pan === testCards.visa, 'the revealed number is the card that was tokenized');
      assert.equal(revealed.headers.get('cache-control'), 'no-store');
      const [record] = await t.adminSql<AuditRow[]>`
        select actor_type, actor_id, outcome, reason, service, details from audit.records
        where action = 'token.reveal' and resource_id = ${tokenId} order by seq desc limit 1`;
      assert.equal(record?.actor_type, 'user');
      assert.equal(record?.actor_id, revealer.id);
      assert.equal(record?.service, 'vault');
      assert.equal(record?.outcome, 'success');
    });

    test('a tampered token is refused (401) and recorded as session_invalid, only as a keyed hash', async () => {
      const [header, payload, signature] = support.token.split('.') as [string, string, string];
      const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
      const tampered = `${header}.${payload}.${flipped}`;
      const reply = await readToken(tampered);
      assert.equal(reply.status, 401);
      assert.equal((reply.json as { code: string }).code, 'session_invalid');
      const hash = t.platform.services.vault!.audit.trail.keyedHash(tampered);
      const [record] = await sessionFailures(hash);
      assert.equal(record?.actor_type, 'anonymous');
      assert.equal(record?.reason, 'session_invalid');
      assert.equal(record?.service, 'vault');
      const [leaks] = await t.adminSql<{ n: number }[]>`
        select count(*)::int as n from audit.records
        where strpos(actor_id || resource_id || coalesce(details::text, ''), ${payload}) > 0`;
      assert.equal(leaks?.n, 0, 'the token itself is in no record');
      // The untouched token still works: the refusal was about the signature.
      assert.equal((await readToken(support.token)).status, 200);
    });

    test('a session idle for more than 15 minutes, or older than 12 hours, is refused on the vault', async () => {
      const sid = decodeSid(support.token);
      await t.adminSql`update identity.operator_sessions set last_seen_at = now() - interval '16 minutes'
        where sid = ${sid}`;
      assert.equal((await readToken(support.token)).status, 401, 'idle');
      await t.adminSql`update identity.operator_sessions set last_seen_at = now() - interval '14 minutes'
        where sid = ${sid}`;
      assert.equal((await readToken(support.token)).status, 200, 'active within 15 minutes');
      await t.adminSql`update identity.operator_sessions set created_at = now() - interval '12 hours 1 minute'
        where sid = ${sid}`;
      assert.equal((await readToken(support.token)).status, 401, 'older than 12 hours');
      await t.adminSql`update identity.operator_sessions set created_at = now() where sid = ${sid}`;
      assert.equal((await readToken(support.token)).status, 200);
      const records = await sessionFailures(support.id);
      assert.ok(records.length >= 2);
      for (const record of records) {
        assert.equal(record.reason, 'session_invalid');
        assert.equal(record.service, 'vault');
        assert.deepEqual(record.details, { session: sid });
      }
    });

    test('after logout on the api, the vault refuses the token', async () => {
      assert.equal((await readToken(support.token)).status, 200);
      const out = await api('/v1/auth/logout', support.token);
      assert.equal(out.status, 204, out.text);
      const reply = await readToken(support.token);
      assert.equal(reply.status, 401);
      assert.equal((reply.json as { code: string }).code, 'session_invalid');
    });

    test('a key rotated on the api verifies on the vault at once; retiring the old key ends its sessions there', async () => {
      const oldKid = decodeProtectedHeader(revealer.token).kid as string;
      const { kid: newKid } = await operators.rotateSessionKey(admin);
      const second = await newOperator(['operator-support']);
      assert.equal(decodeProtectedHeader(second.token).kid, newKid, 'signed by the new key');
      assert.equal((await readToken(second.token)).status, 200, 'the vault picked up the new key');
      assert.equal((await readToken(revealer.token)).status, 200, 'the old key still verifies');

      await operators.retireSessionKey(admin, oldKid);
      assert.equal((await readToken(revealer.token)).status, 401, 'retired: its sessions end on the vault');
      assert.equal((await readToken(second.token)).status, 200);

      await operators.disable(admin, second.id);
      assert.equal((await readToken(second.token)).status, 401, 'a disabled account is refused at once');
    });

    test('made-up key ids are refused, and read the key set at most once per interval', async () => {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const forged = (kid: string) =>
        new SignJWT({ roles: ['operator-reveal'], amr: ['pwd', 'otp'], sid: `sid_${randomBase62()}` })
          .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' })
          .setIssuer('cardhold')
          .setAudience('cardhold-admin')
          .setSubject(`opr_${randomBase62()}`)
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(privateKey);
      // A verifier of its own (same pool and grants as the vault's): after a read that found no key, a
      // new key is not looked for again within the interval; an explicit reload finds it.
      const vaultServices = t.platform.services.vault!;
      const verifier = await SessionVerifier.open({
        sql: vaultServices.sql,
        trail: vaultServices.audit.trail,
        environment: 'development',
      });
      await assert.rejects(verifier.authenticate(await forged(`osk_${randomBase62()}`), origin), {
        code: 'session_invalid',
      });
      await operators.rotateSessionKey(admin);
      const third = await newOperator(['operator-support']);
      await assert.rejects(verifier.authenticate(third.token, origin), { code: 'session_invalid' });
      await verifier.reload();
      const principal = await verifier.authenticate(third.token, origin);
      assert.equal(principal.kind, 'operator');
      assert.equal(principal.id, third.id);
      assert.deepEqual([...principal.roles], ['operator-support']);
      assert.ok(principal.permissions.has('tokens:read'));
      assert.ok(principal.mfaAt instanceof Date);

      const reply = await readToken(await forged(`osk_${randomBase62()}`));
      assert.equal(reply.status, 401);
      assert.equal((reply.json as { code: string }).code, 'session_invalid');
    });
  });
}

const decodeSid = (token: string) => decodeJwt(token)['sid'] as string;
