import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  base64url,
  CompactSign,
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { toProblem } from '../http/problem.ts';
import { CardholdError } from '../shared/errors.ts';
import {
  type OidcRefusalReason,
  OidcVerifier,
  type OidcVerifierOptions,
  oidcRefusal,
  requireMfaFor,
} from './oidc.ts';

/**
 * A local OIDC issuer: RS256 and EdDSA keys, a JWKS served over HTTP on 127.0.0.1, and tokens minted
 * against a controllable clock. Every refusal is checked for its fixed reason and for leaking nothing of
 * the token.
 */

const ISSUER = 'https://idp.test.cardhold.invalid/realms/ops';
const AUDIENCE = 'cardhold-api';
const MERCHANT = 'mer_0123456789abcdefABCDEF';
const T0 = new Date('2031-03-04T05:06:07Z');
const t0 = Math.floor(T0.getTime() / 1000);

const roleMap: OidcVerifierOptions['roleMap'] = {
  'cardhold-support': 'operator-support',
  'cardhold-security': 'security-admin',
  'cardhold-viewers': 'operator-viewer',
};

interface Signer {
  kid: string;
  alg: 'RS256' | 'EdDSA';
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

async function makeSigner(kid: string, alg: 'RS256' | 'EdDSA'): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

let rsa: Signer;
let ed: Signer;
/** An RSA key the provider never published, used under the published key's kid. */
let outsider: Signer;
/** A key the provider starts publishing later (rotation). */
let rotated: Signer;
let rsaPublicPem: string;

/** What the local issuer serves at /jwks, and how often it was asked. */
const issuerState: { keys: JWK[]; hits: number; status: number } = { keys: [], hits: 0, status: 200 };
let server: Server;
let jwksUri: string;

before(async () => {
  [rsa, ed, outsider, rotated] = await Promise.all([
    makeSigner('rsa-1', 'RS256'),
    makeSigner('ed-1', 'EdDSA'),
    makeSigner('rsa-1', 'RS256'),
    makeSigner('rsa-2', 'RS256'),
  ]);
  // The PEM of the published RSA key: what an attacker would use as an HMAC secret.
  rsaPublicPem = await exportSPKI(rsa.publicKey);
  issuerState.keys = [rsa.publicJwk, ed.publicJwk];

  server = createServer((request, response) => {
    if (request.url !== '/jwks') {
      response.writeHead(404).end();
      return;
    }
    issuerState.hits += 1;
    if (issuerState.status !== 200) {
      response.writeHead(issuerState.status).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/jwk-set+json' });
    response.end(JSON.stringify({ keys: issuerState.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function staticJwks(): JSONWebKeySet {
  return { keys: [rsa.publicJwk, ed.publicJwk] };
}

/** A verifier against the served JWKS, with its clock in `clock.now`. */
function remoteVerifier(extra: Partial<OidcVerifierOptions> = {}) {
  const clock = { now: T0 };
  const verifier = new OidcVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUri,
    roleMap,
    now: () => clock.now,
    ...extra,
  });
  return { verifier, clock };
}

function staticVerifier(extra: Partial<OidcVerifierOptions> = {}) {
  const clock = { now: T0 };
  const verifier = new OidcVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwks: staticJwks(),
    roleMap,
    now: () => clock.now,
    ...extra,
  });
  return { verifier, clock };
}

const goodClaims = () =>
  ({
    iss: ISSUER,
    aud: [AUDIENCE, 'account'],
    sub: 'user-7f3a',
    iat: t0,
    nbf: t0,
    exp: t0 + 300,
    groups: ['cardhold-support', 'some-unrelated-group'],
    amr: ['pwd', 'otp'],
    cardhold_merchant: MERCHANT,
  }) satisfies JWTPayload;

async function mint(
  claims: JWTPayload,
  signer: Signer = rsa,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt', ...header })
    .sign(signer.privateKey);
}

const b64json = (value: unknown) => base64url.encode(JSON.stringify(value));

/** Asserts an `unauthenticated` refusal for `reason`, and that the problem a client sees holds nothing of the token. */
async function assertRefused(
  promise: Promise<unknown>,
  reason: OidcRefusalReason,
  token?: string,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof CardholdError, 'a CardholdError');
    assert.equal(error.code, 'unauthenticated');
    assert.equal(error.status, 401);
    assert.equal(error.detail, oidcRefusal[reason]);
    const problem = JSON.stringify(toProblem(error, 'req-oidc'));
    for (const secretish of ['user-7f3a', 'cardhold-support', MERCHANT, 'evil', ...(token ? [token] : [])]) {
      assert.ok(!problem.includes(secretish), 'the problem holds nothing from the token');
      assert.ok(!error.message.includes(secretish), 'the message holds nothing from the token');
    }
    return true;
  });
}

describe('a well-formed token', () => {
  test('passes through the served JWKS, mapping groups to roles and permissions, amr to MFA', async () => {
    const { verifier } = remoteVerifier();
    const principal = await verifier.verify(await mint(goodClaims()));
    assert.deepEqual(principal, {
      subject: 'user-7f3a',
      issuer: ISSUER,
      roles: ['operator-support'],
      permissions: new Set([
        'merchants:read',
        'payments:read',
        'payments:write',
        'refunds:write',
        'tokens:read',
        'webhooks:manage',
      ]),
      mfa: true,
      expiresAt: new Date((t0 + 300) * 1000),
      merchantId: MERCHANT,
    });
  });

  test('passes with static keys and EdDSA; several groups give the union of their roles', async () => {
    const { verifier } = staticVerifier();
    const { cardhold_merchant: _m, ...claims } = {
      ...goodClaims(),
      groups: ['cardhold-security', 'cardhold-viewers'],
    };
    const principal = await verifier.verify(await mint(claims, ed));
    assert.deepEqual(principal.roles, ['operator-viewer', 'security-admin']);
    assert.ok(principal.permissions.has('audit:read'));
    assert.ok(principal.permissions.has('keys:admin'));
    assert.ok(!principal.permissions.has('tokens:read'));
    assert.equal(principal.merchantId, null);
    assert.equal(principal.mfa, true);
  });

  test('a single-string group claim, a custom role claim and merchant claim are honoured', async () => {
    const { verifier } = staticVerifier({
      roleClaim: 'https://cardhold.example/roles',
      merchantClaim: 'mid',
    });
    const { groups: _g, cardhold_merchant: _c, ...rest } = goodClaims();
    const principal = await verifier.verify(
      await mint({ ...rest, 'https://cardhold.example/roles': 'cardhold-viewers', mid: MERCHANT }),
    );
    assert.deepEqual(principal.roles, ['operator-viewer']);
    assert.equal(principal.merchantId, MERCHANT);
  });

  test('typ is checked when configured', async () => {
    const { verifier } = staticVerifier({ typ: 'at+jwt' });
    await verifier.verify(await mint(goodClaims()));
    const token = await mint(goodClaims(), rsa, { typ: 'JWT' });
    await assertRefused(verifier.verify(token), 'type', token);
  });
});

describe('JWT attacks are refused', () => {
  for (const alg of ['none', 'None', 'NONE']) {
    test(`alg: ${alg} (an unsigned token)`, async () => {
      const token = `${b64json({ alg, kid: rsa.kid, typ: 'JWT' })}.${b64json(goodClaims())}.`;
      await assertRefused(remoteVerifier().verifier.verify(token), 'algorithm', token);
      await assertRefused(staticVerifier().verifier.verify(token), 'algorithm', token);
    });
  }

  test('HS256 signed with the RSA public key PEM as the HMAC secret (key confusion)', async () => {
    const secret = new TextEncoder().encode(rsaPublicPem);
    const token = await new SignJWT(goodClaims())
      .setProtectedHeader({ alg: 'HS256', kid: rsa.kid, typ: 'JWT' })
      .sign(secret);
    await assertRefused(remoteVerifier().verifier.verify(token), 'algorithm', token);
    await assertRefused(staticVerifier().verifier.verify(token), 'algorithm', token);
    // Also with the PEM's DER bytes and with the JWK's modulus, the other secrets such attacks try.
    const der = Buffer.from(rsaPublicPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    for (const alt of [der, base64url.decode(rsa.publicJwk.n!)]) {
      const t = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'HS256', kid: rsa.kid }).sign(alt);
      await assertRefused(staticVerifier().verifier.verify(t), 'algorithm', t);
    }
  });

  test('an allowed algorithm that does not fit the named key (ES256 header on the RSA kid)', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const token = await new SignJWT(goodClaims())
      .setProtectedHeader({ alg: 'ES256', kid: rsa.kid })
      .sign(privateKey);
    await assertRefused(staticVerifier().verifier.verify(token), 'unknownKey', token);
  });

  test('an algorithm left off the allow-list, though the key would verify it', async () => {
    const { verifier } = staticVerifier({ algorithms: ['EdDSA'] });
    const token = await mint(goodClaims(), rsa);
    await assertRefused(verifier.verify(token), 'algorithm', token);
  });

  test('wrong issuer', async () => {
    const token = await mint({ ...goodClaims(), iss: 'https://evil.example/realms/ops' });
    await assertRefused(remoteVerifier().verifier.verify(token), 'issuer', token);
    const trailing = await mint({ ...goodClaims(), iss: `${ISSUER}/` });
    await assertRefused(staticVerifier().verifier.verify(trailing), 'issuer', trailing);
  });

  test('wrong audience, and no audience', async () => {
    const token = await mint({ ...goodClaims(), aud: ['evil-api', 'account'] });
    await assertRefused(remoteVerifier().verifier.verify(token), 'audience', token);
    const { aud: _a, ...noAud } = goodClaims();
    const missing = await mint(noAud);
    await assertRefused(staticVerifier().verifier.verify(missing), 'missingClaim', missing);
  });

  test('expired, beyond the clock tolerance', async () => {
    const token = await mint({ ...goodClaims(), exp: t0 - 31 });
    await assertRefused(remoteVerifier().verifier.verify(token), 'expired', token);
    // Within the 30 s tolerance it still passes.
    await staticVerifier().verifier.verify(await mint({ ...goodClaims(), exp: t0 - 29 }));
  });

  test('not yet valid (nbf in the future)', async () => {
    const token = await mint({ ...goodClaims(), nbf: t0 + 120, exp: t0 + 600 });
    await assertRefused(remoteVerifier().verifier.verify(token), 'notYetValid', token);
  });

  test('tampered payload (a claim changed after signing, the signature kept)', async () => {
    const token = await mint(goodClaims());
    const [header, , signature] = token.split('.');
    const escalated = { ...goodClaims(), groups: ['cardhold-security'] };
    const tampered = `${header}.${b64json(escalated)}.${signature}`;
    await assertRefused(remoteVerifier().verifier.verify(tampered), 'signature', tampered);
    const { verifier } = staticVerifier();
    await assertRefused(verifier.verify(tampered), 'signature', tampered);
    // A flipped signature bit, too.
    const bytes = base64url.decode(signature!);
    bytes[0] = bytes[0]! ^ 1;
    const flipped = `${header}.${token.split('.')[1]}.${base64url.encode(bytes)}`;
    await assertRefused(verifier.verify(flipped), 'signature', flipped);
  });

  test('unknown kid', async () => {
    const token = await mint(goodClaims(), rsa, { kid: 'rsa-does-not-exist' });
    await assertRefused(remoteVerifier().verifier.verify(token), 'unknownKey', token);
    await assertRefused(staticVerifier().verifier.verify(token), 'unknownKey', token);
  });

  test('missing kid, even when the key set has exactly one key of the right type', async () => {
    const token = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
    await assertRefused(remoteVerifier().verifier.verify(token), 'missingKeyId', token);
    await assertRefused(staticVerifier().verifier.verify(token), 'missingKeyId', token);
    const empty = await new SignJWT(goodClaims())
      .setProtectedHeader({ alg: 'RS256', kid: '' })
      .sign(rsa.privateKey);
    await assertRefused(staticVerifier().verifier.verify(empty), 'missingKeyId', empty);
  });

  test('signed by a key not in the JWKS, under a published kid', async () => {
    const token = await mint(goodClaims(), outsider);
    await assertRefused(remoteVerifier().verifier.verify(token), 'signature', token);
    await assertRefused(staticVerifier().verifier.verify(token), 'signature', token);
  });

  test('not a JWT at all, or far too large', async () => {
    const { verifier } = staticVerifier();
    for (const token of ['', 'evil', 'a.b', 'a.b.c', 'a.b.c.d.e']) {
      await assertRefused(verifier.verify(token), 'malformed', token);
    }
    // A well-formed header over a payload that is not JSON: the signature is checked before the payload
    // is ever parsed, so this fails there.
    const junk = `${b64json({ alg: 'RS256', kid: 'rsa-1' })}.evil.sig`;
    await assertRefused(verifier.verify(junk), 'signature', junk);
    // A correctly signed payload that is not a claims set.
    const array = await new CompactSign(new TextEncoder().encode('[1,2]'))
      .setProtectedHeader({ alg: 'RS256', kid: rsa.kid })
      .sign(rsa.privateKey);
    await assertRefused(verifier.verify(array), 'malformed', array);
    const big = `${b64json({ alg: 'RS256', kid: 'rsa-1' })}.${'A'.repeat(20_000)}.sig`;
    await assertRefused(verifier.verify(big), 'malformed', big);
  });

  test('a missing exp or sub', async () => {
    const { verifier } = staticVerifier();
    const { exp: _e, ...noExp } = goodClaims();
    const { sub: _s, ...noSub } = goodClaims();
    for (const claims of [noExp, noSub]) {
      const token = await mint(claims);
      await assertRefused(verifier.verify(token), 'missingClaim', token);
    }
  });
});

describe('claims and roles', () => {
  test('only unknown groups, no group claim, or prototype names: refused as mapping to no role', async () => {
    const { verifier } = staticVerifier();
    const { groups: _g, ...noGroups } = goodClaims();
    for (const claims of [
      { ...goodClaims(), groups: ['evil-admins', 'Cardhold-Security'] },
      { ...goodClaims(), groups: [] },
      { ...goodClaims(), groups: ['__proto__', 'constructor', 'toString', 'hasOwnProperty'] },
      noGroups,
    ]) {
      const token = await mint(claims);
      await assertRefused(verifier.verify(token), 'noRole', token);
    }
  });

  test('a group claim, amr or sub of the wrong shape is refused', async () => {
    const { verifier } = staticVerifier();
    for (const claims of [
      { ...goodClaims(), groups: ['cardhold-support', 7] },
      { ...goodClaims(), groups: { 'cardhold-support': true } },
      { ...goodClaims(), amr: 'otp' },
      { ...goodClaims(), amr: [{ otp: true }] },
      { ...goodClaims(), sub: '' },
      { ...goodClaims(), sub: 'x'.repeat(256) },
    ]) {
      const token = await new SignJWT(claims as JWTPayload)
        .setProtectedHeader({ alg: 'RS256', kid: rsa.kid })
        .sign(rsa.privateKey);
      await assertRefused(verifier.verify(token), 'invalidClaim', token);
    }
  });

  test('an auth_time in the future, or not a number, is refused: it would make MFA look fresh for the token’s life', async () => {
    const { verifier } = staticVerifier();
    for (const authTime of [t0 + 3600, t0 + 31, 'yesterday']) {
      const token = await mint({ ...goodClaims(), auth_time: authTime as number });
      await assertRefused(verifier.verify(token), 'invalidClaim', token);
    }
    // Within the clock tolerance, or in the past, it passes.
    for (const authTime of [t0 + 30, t0 - 600]) {
      assert.ok(await verifier.verify(await mint({ ...goodClaims(), auth_time: authTime })));
    }
  });

  test('a merchant claim that is not a merchant id is refused', async () => {
    const { verifier } = staticVerifier();
    for (const bad of ['evil', `${MERCHANT}x`, 'mer_0123456789abcdefABCDE!', 42]) {
      const token = await mint({ ...goodClaims(), cardhold_merchant: bad });
      await assertRefused(verifier.verify(token), 'merchant', token);
    }
  });

  test('a security administrator confined to a merchant is refused; without the merchant claim it passes', async () => {
    const { verifier } = staticVerifier();
    for (const groups of [['cardhold-security'], ['cardhold-security', 'cardhold-support']]) {
      const token = await mint({ ...goodClaims(), groups });
      await assertRefused(verifier.verify(token), 'merchantRole', token);
    }
    const { cardhold_merchant: _, ...platformWide } = goodClaims();
    const admin = await verifier.verify(await mint({ ...platformWide, groups: ['cardhold-security'] }));
    assert.deepEqual(admin.roles, ['security-admin']);
    assert.equal(admin.merchantId, null);
    // A person's roles that do not administer the platform may be confined.
    const support = await verifier.verify(await mint(goodClaims()));
    assert.equal(support.merchantId, MERCHANT);
  });
});

describe('MFA', () => {
  test('without an MFA amr value: requireMfaFor refuses a CDE permission, allows a non-CDE one', async () => {
    const { verifier } = staticVerifier();
    for (const amr of [undefined, ['pwd'], ['pwd', 'kba'], []]) {
      const claims = { ...goodClaims(), amr };
      if (amr === undefined) delete claims.amr;
      const principal = await verifier.verify(await mint(claims));
      assert.equal(principal.mfa, false);
      assert.ok(principal.permissions.has('tokens:read'));
      assert.throws(
        () => requireMfaFor(principal, 'tokens:read'),
        (error: unknown) =>
          error instanceof CardholdError &&
          error.code === 'mfa_required' &&
          error.status === 401 &&
          error.detail === 'Multi-factor authentication is required for this action',
      );
      for (const cde of ['tokens:reveal', 'cvv:use', 'keys:admin', 'audit:read'] as const) {
        assert.throws(() => requireMfaFor(principal, cde), { code: 'mfa_required' });
      }
      assert.doesNotThrow(() => requireMfaFor(principal, 'merchants:read'));
      assert.doesNotThrow(() => requireMfaFor(principal, 'payments:read'));
    }
  });

  test('with an MFA amr value, CDE permissions pass; mfaAmr is configurable', async () => {
    const { verifier } = staticVerifier();
    for (const amr of [['pwd', 'otp'], ['hwk'], ['mfa'], ['swk', 'pwd']]) {
      const principal = await verifier.verify(await mint({ ...goodClaims(), amr }));
      assert.equal(principal.mfa, true, String(amr));
      assert.doesNotThrow(() => requireMfaFor(principal, 'tokens:read'));
    }
    const strict = staticVerifier({ mfaAmr: ['hwk'] }).verifier;
    assert.equal((await strict.verify(await mint({ ...goodClaims(), amr: ['pwd', 'otp'] }))).mfa, false);
    assert.equal((await strict.verify(await mint({ ...goodClaims(), amr: ['hwk'] }))).mfa, true);
  });
});

describe('the clock', () => {
  test('the same token passes, then expires as the injected clock moves past exp and the tolerance', async () => {
    const { verifier, clock } = remoteVerifier({ clockToleranceSeconds: 5 });
    const token = await mint({ ...goodClaims(), exp: t0 + 60 });
    await verifier.verify(token);
    clock.now = new Date((t0 + 64) * 1000);
    await verifier.verify(token);
    clock.now = new Date((t0 + 65) * 1000);
    await assertRefused(verifier.verify(token), 'expired', token);
  });

  test('a token with nbf ahead passes once the clock reaches it (less the tolerance)', async () => {
    const { verifier, clock } = staticVerifier({ clockToleranceSeconds: 0 });
    const token = await mint({ ...goodClaims(), nbf: t0 + 100, exp: t0 + 400 });
    await assertRefused(verifier.verify(token), 'notYetValid', token);
    clock.now = new Date((t0 + 99) * 1000);
    await assertRefused(verifier.verify(token), 'notYetValid', token);
    clock.now = new Date((t0 + 100) * 1000);
    assert.equal((await verifier.verify(token)).subject, 'user-7f3a');
  });
});

describe('the remote key set', () => {
  test('unknown kids do not make the verifier fetch the JWKS again within the cooldown', async () => {
    const { verifier } = remoteVerifier({ jwksCooldownMs: 60_000 });
    const before = issuerState.hits;
    await verifier.verify(await mint(goodClaims()));
    assert.equal(issuerState.hits, before + 1);
    for (let i = 0; i < 5; i += 1) {
      const token = await mint(goodClaims(), rsa, { kid: `unknown-${i}` });
      await assertRefused(verifier.verify(token), 'unknownKey', token);
    }
    assert.equal(issuerState.hits, before + 1);
  });

  test('a key the provider publishes later is picked up once the cooldown allows (rotation)', async () => {
    const { verifier } = remoteVerifier({ jwksCooldownMs: 0 });
    await verifier.verify(await mint(goodClaims()));
    const token = await mint(goodClaims(), rotated);
    await assertRefused(verifier.verify(token), 'unknownKey', token);
    issuerState.keys = [rsa.publicJwk, ed.publicJwk, rotated.publicJwk];
    try {
      assert.equal((await verifier.verify(token)).subject, 'user-7f3a');
    } finally {
      issuerState.keys = [rsa.publicJwk, ed.publicJwk];
    }
  });

  test('an unavailable JWKS refuses the token', async () => {
    issuerState.status = 503;
    try {
      const token = await mint(goodClaims());
      await assertRefused(remoteVerifier().verifier.verify(token), 'keysUnavailable', token);
    } finally {
      issuerState.status = 200;
    }
    const closed = new OidcVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: 'http://127.0.0.1:1/jwks',
      roleMap,
      now: () => T0,
    });
    const token = await mint(goodClaims());
    await assertRefused(closed.verify(token), 'keysUnavailable', token);
  });
});

describe('configuration', () => {
  const base: OidcVerifierOptions = { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [] }, roleMap };
  const refused = (options: Partial<OidcVerifierOptions>, pattern: RegExp) =>
    assert.throws(() => new OidcVerifier({ ...base, ...options } as OidcVerifierOptions), pattern);

  test("listing 'none' or an HMAC algorithm is refused", () => {
    for (const algorithms of [
      ['none'],
      ['RS256', 'none'],
      ['HS256'],
      ['RS256', 'HS512'],
      ['hs256'],
      ['RSA-OAEP'],
    ]) {
      refused({ algorithms }, /asymmetric signature algorithms/);
    }
    refused({ algorithms: [] }, /at least one algorithm/);
  });

  test('exactly one key source; the JWKS URL is https or loopback, without credentials', () => {
    refused({ jwks: undefined }, /exactly one of jwksUri and jwks/);
    refused({ jwksUri: 'https://idp.example/jwks' }, /exactly one of jwksUri and jwks/);
    const remote = (jwksUri: string) => ({ jwks: undefined, jwksUri });
    refused(remote('http://idp.example/jwks'), /must use https/);
    refused(remote('file:///etc/jwks.json'), /must use https/);
    refused(remote('not a url'), /not a URL/);
    refused(remote('https://user:pw@idp.example/jwks'), /credentials/);
    assert.ok(new OidcVerifier({ ...base, ...remote('https://idp.example/jwks') }));
    assert.ok(new OidcVerifier({ ...base, ...remote('http://localhost:8080/jwks') }));
  });

  test('issuer, audience, role map, MFA values and clock tolerance are checked', () => {
    refused({ issuer: '' }, /issuer is required/);
    refused({ audience: '' }, /audience is required/);
    refused({ roleMap: {} }, /at least one group/);
    refused({ roleMap: { admins: 'root' as never } }, /not a person's/);
    // Services' and merchant keys' roles are not for people: a group mapped to one would let a person
    // act as the api towards the vault, or as any merchant's secret key.
    for (const role of ['service-api', 'service-vault', 'merchant-secret', 'merchant-publishable'] as const) {
      refused({ roleMap: { pipes: role } }, /not a person's/);
    }
    refused({ mfaAmr: [] }, /mfaAmr/);
    refused({ mfaAmr: ['pwd', 'otp'] }, /pwd/);
    refused({ clockToleranceSeconds: 3600 }, /clockToleranceSeconds/);
    refused({ clockToleranceSeconds: -1 }, /clockToleranceSeconds/);
  });
});
