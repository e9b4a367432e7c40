import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import type { Sql } from 'postgres';
import { backends, startTestPlatform, type TestPlatform } from '../../../test/harness.ts';
import { LocalKeyProvider } from '../../keys/local-key-provider.ts';
import { CardholdError } from '../../shared/errors.ts';
import { SESSION_AUDIENCE, SESSION_ISSUER, type SessionClaims, SessionTokens } from './session-tokens.ts';

const claims: SessionClaims = {
  sub: 'opr_AAAAAAAAAAAAAAAAAAAAAA',
  roles: ['security-admin'],
  merchantId: null,
  amr: ['pwd', 'otp'],
  mfaAt: new Date('2031-01-01T00:00:00Z'),
  sid: 'sid_AAAAAAAAAAAAAAAAAAAAAA',
};

const isSessionInvalid = (error: unknown) =>
  error instanceof CardholdError && error.code === 'session_invalid';

for (const backend of backends()) {
  describe(`operator session tokens (${backend})`, () => {
    let t: TestPlatform;
    let provider: LocalKeyProvider;
    let sql: Sql;
    let clock = new Date('2031-01-01T00:00:00Z');
    const now = () => clock;

    before(async () => {
      t = await startTestPlatform(backend, 'session-tokens', { roles: ['api'] });
      provider = await LocalKeyProvider.open(t.dataDir);
      sql = t.platform.services.apiSql as Sql;
    });
    after(async () => {
      await provider?.close();
      await t?.close();
    });

    test('the api created one key at its first start, stored only wrapped; later opens reuse it', async () => {
      const keys = await t.adminSql<{ kid: string }[]>`select kid from identity.session_keys`;
      assert.equal(keys.length, 1, 'the platform created exactly one key when it started');
      const first = await SessionTokens.open(sql, provider, now);
      assert.equal(first.created, undefined);
      const kid = first.tokens.signingKid ?? '';
      assert.ok(kid.startsWith('osk_'));
      assert.equal(kid, keys[0]?.kid);
      const second = await SessionTokens.open(sql, provider, now);
      assert.equal(second.created, undefined);
      assert.equal(second.tokens.signingKid, kid);
      const [row] = await t.adminSql<{ wrapped_private_key: Buffer; public_key: Buffer }[]>`
        select wrapped_private_key, public_key from identity.session_keys where kid = ${kid}`;
      assert.ok(row);
      // A PKCS#8 Ed25519 key starts 302e020100300506032b6570; the stored bytes are ciphertext.
      assert.ok(!row.wrapped_private_key.includes(Buffer.from('302e020100300506032b6570', 'hex')));
    });

    test('a signed token verifies with the stated issuer, audience, lifetime and claims', async () => {
      const { tokens } = await SessionTokens.open(sql, provider, now);
      const signed = await tokens.sign(claims);
      assert.equal(String(signed.token), '[REDACTED]');
      const token = signed.token.expose();
      const header = decodeProtectedHeader(token);
      assert.equal(header.alg, 'EdDSA');
      assert.equal(header.kid, tokens.signingKid);
      const verified = await tokens.verify(token);
      assert.equal(verified.sub, claims.sub);
      assert.deepEqual(verified.roles, claims.roles);
      assert.deepEqual(verified.amr, ['pwd', 'otp']);
      assert.equal(verified.sid, claims.sid);
      assert.equal(verified.mfaAt?.getTime(), claims.mfaAt?.getTime());
      assert.equal(verified.expiresAt.getTime() - verified.issuedAt.getTime(), 15 * 60_000);
      assert.equal(verified.issuedAt.getTime(), clock.getTime());

      // An independent verifier with only the JWKS agrees.
      const jwks = createLocalJWKSet(await tokens.jwks());
      const independent = await jwtVerify(token, jwks, {
        issuer: SESSION_ISSUER,
        audience: SESSION_AUDIENCE,
        currentDate: clock,
      });
      assert.equal(independent.payload.sub, claims.sub);
      assert.equal(independent.payload['mfa_at'], Math.floor((claims.mfaAt as Date).getTime() / 1000));
    });

    test('expired, tampered, foreign-key, wrong-audience and unsigned tokens are refused', async () => {
      const { tokens } = await SessionTokens.open(sql, provider, now);
      const token = (await tokens.sign(claims)).token.expose();

      clock = new Date(clock.getTime() + 15 * 60_000 + 6_000);
      await assert.rejects(tokens.verify(token), isSessionInvalid, 'expired after 15 minutes');
      clock = new Date(clock.getTime() - 15 * 60_000 - 6_000);

      const [h, p, s] = token.split('.') as [string, string, string];
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
      const forged = Buffer.from(
        JSON.stringify({ ...payload, roles: ['security-admin', 'operator-support'] }),
      );
      await assert.rejects(tokens.verify(`${h}.${forged.toString('base64url')}.${s}`), isSessionInvalid);

      const foreign = generateKeyPairSync('ed25519').privateKey;
      const signWith = (builder: SignJWT) =>
        builder
          .setIssuer(SESSION_ISSUER)
          .setSubject(claims.sub)
          .setIssuedAt(Math.floor(clock.getTime() / 1000))
          .setExpirationTime(Math.floor(clock.getTime() / 1000) + 600);
      const body = { roles: claims.roles, amr: claims.amr, sid: claims.sid, mfa_at: null };
      const byStranger = await signWith(
        new SignJWT(body).setProtectedHeader({ alg: 'EdDSA', kid: tokens.signingKid ?? '', typ: 'JWT' }),
      )
        .setAudience(SESSION_AUDIENCE)
        .sign(foreign);
      await assert.rejects(
        tokens.verify(byStranger),
        isSessionInvalid,
        'signed by another key under our kid',
      );

      // Our own key, but the wrong audience, issuer or type: refused. (The test unwraps the key as the
      // class does, with the provider.)
      const [row] = await t.adminSql<{ wrapped_private_key: Buffer; environment: string }[]>`
        select wrapped_private_key, environment from identity.session_keys where kid = ${tokens.signingKid ?? ''}`;
      const der = await provider.unwrap(
        (row as { wrapped_private_key: Buffer }).wrapped_private_key,
        `cardhold/operator-session-signing/v1|${tokens.signingKid}|${row?.environment}`,
      );
      const ours = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      const header = { alg: 'EdDSA', kid: tokens.signingKid ?? '', typ: 'JWT' };
      const control = await signWith(new SignJWT(body).setProtectedHeader(header))
        .setAudience(SESSION_AUDIENCE)
        .sign(ours);
      assert.equal((await tokens.verify(control)).sub, claims.sub, 'the control token verifies');
      const wrongAudience = await signWith(new SignJWT(body).setProtectedHeader(header))
        .setAudience('cardhold-dashboard')
        .sign(ours);
      await assert.rejects(tokens.verify(wrongAudience), isSessionInvalid, 'wrong audience');
      const wrongIssuer = await signWith(new SignJWT(body).setProtectedHeader(header))
        .setIssuer('https://elsewhere.example')
        .setAudience(SESSION_AUDIENCE)
        .sign(ours);
      await assert.rejects(tokens.verify(wrongIssuer), isSessionInvalid, 'wrong issuer');
      const wrongType = await signWith(new SignJWT(body).setProtectedHeader({ ...header, typ: 'at+jwt' }))
        .setAudience(SESSION_AUDIENCE)
        .sign(ours);
      await assert.rejects(tokens.verify(wrongType), isSessionInvalid, 'wrong type');
      const noSid = await signWith(new SignJWT({ ...body, sid: undefined }).setProtectedHeader(header))
        .setAudience(SESSION_AUDIENCE)
        .sign(ours);
      await assert.rejects(tokens.verify(noSid), isSessionInvalid, 'a required claim missing');
      const badRole = await signWith(new SignJWT({ ...body, roles: ['root'] }).setProtectedHeader(header))
        .setAudience(SESSION_AUDIENCE)
        .sign(ours);
      await assert.rejects(tokens.verify(badRole), isSessionInvalid, 'an unknown role');

      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
      await assert.rejects(tokens.verify(none), isSessionInvalid, 'alg none');
      await assert.rejects(tokens.verify('not-a-jwt'), isSessionInvalid);
      await assert.rejects(tokens.verify(''), isSessionInvalid);
    });

    test('rotation: new tokens use the new key, old tokens verify until their key is retired', async () => {
      const { tokens } = await SessionTokens.open(sql, provider, now);
      const oldKid = tokens.signingKid as string;
      const oldToken = (await tokens.sign(claims)).token.expose();

      const newKid = await tokens.rotate();
      assert.notEqual(newKid, oldKid);
      const newToken = (await tokens.sign(claims)).token.expose();
      assert.equal(decodeProtectedHeader(newToken).kid, newKid);
      assert.equal((await tokens.verify(oldToken)).kid, oldKid, 'the old key still verifies');
      assert.equal((await tokens.verify(newToken)).kid, newKid);

      // Another replica, opened before or after, verifies the new key too (it reloads on an unknown kid).
      const { tokens: replica } = await SessionTokens.open(sql, provider, now);
      assert.equal(replica.signingKid, newKid, 'the newest key signs');
      assert.equal((await replica.verify(oldToken)).kid, oldKid);

      await assert.rejects(tokens.retire(newKid), /rotate first/, 'the signing key cannot be retired');
      assert.equal(await tokens.retire(oldKid), true);
      assert.equal(await tokens.retire(oldKid), false, 'already retired');
      await assert.rejects(tokens.verify(oldToken), isSessionInvalid, 'retired: no longer verifies');
      assert.equal((await tokens.verify(newToken)).kid, newKid);

      const jwks = await tokens.jwks();
      const kids = jwks.keys.map((k) => k.kid);
      assert.ok(kids.includes(newKid));
      assert.ok(!kids.includes(oldKid), 'a retired key leaves the JWKS');
    });

    test('the JWKS holds public keys only: no private part, no secret material', async () => {
      const { tokens } = await SessionTokens.open(sql, provider, now);
      await tokens.rotate();
      const jwks = await tokens.jwks();
      assert.ok(jwks.keys.length >= 2);
      for (const key of jwks.keys) {
        assert.deepEqual(Object.keys(key).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
        assert.equal(key.kty, 'OKP');
        assert.equal(key.crv, 'Ed25519');
        assert.equal(key.alg, 'EdDSA');
        assert.equal(key.use, 'sig');
        assert.equal('d' in key, false);
        assert.equal(Buffer.from(key.x ?? '', 'base64url').length, 32);
      }
    });
  });
}
