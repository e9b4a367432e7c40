import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { URI } from 'otpauth';
import { Agent } from 'undici';
import { testCards } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { AUDIENCE, ISSUER, startIdentityProvider } from '../../test/identity-provider.ts';
import { routeTable } from '../http/create-server.ts';
import type { ServiceRole } from '../keys/local-ca.ts';
import { openLocalCa } from '../keys/local-ca.ts';
import { type Permission, type RoleName, roleNames, rolePermissions } from './permissions.ts';
import { secretKeyScopes } from './scopes.ts';

const SHOP = 'https://shop.example';

/**
 * What each route must require, written down independently of the code: a route the servers register
 * that is missing here, or that declares something else, fails the matrix.
 */
const expectedAccess: Record<string, Permission | 'public' | 'session' | 'person'> = {
  'api GET /.well-known/jwks.json': 'public',
  'api GET /v1/auth/whoami': 'person',
  'api POST /v1/auth/login': 'public',
  'api POST /v1/auth/mfa': 'public',
  'api POST /v1/auth/refresh': 'session',
  'api POST /v1/auth/step-up': 'session',
  'api POST /v1/auth/password': 'session',
  'api POST /v1/auth/logout': 'session',
  'api POST /v1/operators': 'users:admin',
  'api GET /v1/operators/:id': 'users:admin',
  'api POST /v1/operators/:id/unlock': 'users:admin',
  'api POST /v1/operators/:id/disable': 'users:admin',
  'api POST /v1/operators/:id/reset-mfa': 'users:admin',
  'api POST /v1/operators/:id/reset-password': 'users:admin',
  'vault POST /v1/tokens': 'tokens:create',
  'vault POST /v1/tokens/batch': 'tokens:create',
  'vault GET /v1/tokens': 'tokens:read',
  'vault GET /v1/tokens/:id': 'tokens:read',
  'vault DELETE /v1/tokens/:id': 'tokens:delete',
  'vault POST /v1/tokens/:id/cvv-slots': 'tokens:create',
  'vault POST /v1/tokens/:id/reveal': 'tokens:reveal',
  'vault GET /v1/cvv-slots/:id': 'tokens:read',
  'vault DELETE /v1/cvv-slots/:id': 'tokens:delete',
  'vault GET /healthz': 'public',
  'vault GET /readyz': 'public',
  'api POST /v1/merchants': 'merchants:admin',
  'api GET /v1/merchants/:id': 'merchants:read',
  'api POST /v1/merchants/:id/api-keys': 'merchants:admin',
  'api POST /v1/merchants/:id/api-keys/:keyId/rotate': 'merchants:admin',
  'api GET /v1/merchants/:id/api-keys': 'merchants:read',
  'api DELETE /v1/merchants/:id/api-keys/:keyId': 'merchants:admin',
  'api GET /v1/audit/signing-keys': 'public',
  'api POST /v1/admin/audit/verify': 'audit:read',
  'api GET /v1/admin/audit/records': 'audit:read',
  'api GET /healthz': 'public',
  'api GET /readyz': 'public',
  // Payments (issue 5): the forward proxy is the api's alone; payments and refunds are merchants'.
  'vault POST /v1/forward': 'forward:use',
  'vault POST /v1/cvv-slots/:id/settle': 'cvv:use',
  'api POST /v1/payment_intents': 'payments:write',
  'api GET /v1/payment_intents': 'payments:read',
  'api GET /v1/payment_intents/:id': 'payments:read',
  'api GET /v1/payment_intents/:id/attempts': 'payments:read',
  'api POST /v1/payment_intents/:id/confirm': 'payments:write',
  'api POST /v1/payment_intents/:id/capture': 'payments:write',
  'api POST /v1/payment_intents/:id/cancel': 'payments:write',
  'api POST /v1/refunds': 'refunds:write',
  'api GET /v1/refunds': 'payments:read',
  'api GET /v1/refunds/:id': 'payments:read',
  'acquirer POST /v1/authorizations': 'acquirer:transact',
  'acquirer GET /v1/authorizations': 'acquirer:transact',
  'acquirer GET /v1/authorizations/:id': 'acquirer:transact',
  'acquirer POST /v1/authorizations/:id/captures': 'acquirer:transact',
  'acquirer POST /v1/authorizations/:id/void': 'acquirer:transact',
  'acquirer POST /v1/authorizations/:id/refunds': 'acquirer:transact',
  'acquirer GET /healthz': 'public',
  'acquirer GET /readyz': 'public',
  'vault GET /v1/keys/seal-status': 'keys:admin',
  'vault POST /v1/keys/unseal': 'keys:admin',
  'vault POST /v1/keys/seal': 'keys:admin',
  'api POST /v1/webhook_endpoints': 'webhooks:manage',
  'api GET /v1/webhook_endpoints': 'webhooks:manage',
  'api GET /v1/webhook_endpoints/:id': 'webhooks:manage',
  'api DELETE /v1/webhook_endpoints/:id': 'webhooks:manage',
  'api POST /v1/webhook_endpoints/:id/rotate_secret': 'webhooks:manage',
  'api GET /v1/webhook_endpoints/:id/deliveries': 'webhooks:manage',
  'api POST /v1/webhook_deliveries/:id/retry': 'webhooks:manage',
  'api GET /v1/events': 'webhooks:manage',
  'api GET /v1/events/:id': 'webhooks:manage',
  // Web (issue 10): the hosted card fields and the SDK serve no card data; the page checks its key itself.
  'vault GET /hosted/card-fields': 'public',
  'vault POST /hosted/csp-reports': 'public',
  'vault GET /hosted/card-fields.js': 'public',
  'vault GET /hosted/card-fields.css': 'public',
  'vault GET /sdk/cardhold.js': 'public',
  // Operator dashboard (issue 10): its page, script and stylesheet hold no data; the views' data comes
  // from the routes above and these, with the operator's own permissions.
  'api GET /dashboard': 'public',
  'api GET /dashboard/app.js': 'public',
  'api GET /dashboard/app.css': 'public',
  'api GET /v1/admin/scan-report': 'audit:read',
  'vault GET /v1/keys/status': 'keys:admin',
  'vault GET /v1/keys/inventory': 'keys:admin',
};

function expectedFor(
  role: ServiceRole,
  method: string,
  url: string,
): Permission | 'public' | 'session' | 'person' | undefined {
  if (url.startsWith('/docs')) return 'public';
  const key = `${role} ${method === 'HEAD' ? 'GET' : method} ${url}`;
  return expectedAccess[key];
}

/** Path parameters that match each route's schema, so that a request gets past validation. */
function concretePath(url: string): string {
  const id = (prefix: string) => `${prefix}_${'A'.repeat(22)}`;
  return url
    .replace(/^\/v1\/tokens\/:id/, `/v1/tokens/${id('tok')}`)
    .replace(/^\/v1\/cvv-slots\/:id/, `/v1/cvv-slots/${id('cvv')}`)
    .replace(/^\/v1\/merchants\/:id/, `/v1/merchants/${id('mer')}`)
    .replace(/^\/v1\/operators\/:id/, `/v1/operators/${id('opr')}`)
    .replace(/^\/v1\/payment_intents\/:id/, `/v1/payment_intents/${id('pi')}`)
    .replace(/^\/v1\/refunds\/:id/, `/v1/refunds/${id('re')}`)
    .replace(/^\/v1\/authorizations\/:id/, `/v1/authorizations/${id('aqa')}`)
    .replace(':keyId', id('key'))
    .replace(/^\/v1\/webhook_endpoints\/:id/, `/v1/webhook_endpoints/${id('we')}`)
    .replace(/^\/v1\/webhook_deliveries\/:id/, `/v1/webhook_deliveries/${id('whd')}`)
    .replace(/^\/v1\/events\/:id/, `/v1/events/${id('evt')}`)
    .replace('/docs/static/*', '/docs/static/index.html')
    .replace(/\*$/, '');
}

/** Bootstraps the first security administrator and signs in: password, TOTP enrolment, session. */
async function operatorSession(t: TestPlatform): Promise<string> {
  const operators = t.platform.services.operators as NonNullable<typeof t.platform.services.operators>;
  await operators.bootstrap('root-admin', 'Bootstrap-passw0rd-42');
  const login = await t.request<{ challenge_token: string; enrolment_uri: string }>(
    'POST',
    `${t.apiUrl}/v1/auth/login`,
    {
      key: null,
      body: { username: 'root-admin', password: 'Bootstrap-passw0rd-42' },
    },
  );
  assert.equal(login.status, 200, login.text);
  const totp = URI.parse(login.json.enrolment_uri);
  if (!('generate' in totp)) throw new Error('not a TOTP URI');
  const session = await t.request<{ token: string }>('POST', `${t.apiUrl}/v1/auth/mfa`, {
    key: null,
    body: { challenge_token: login.json.challenge_token, code: totp.generate() },
  });
  assert.equal(session.status, 200, session.text);
  return session.json.token;
}

describe('authorization: every role against every route (embedded)', () => {
  let t: TestPlatform;
  let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
  const credentials = new Map<
    string,
    {
      key: string | null;
      headers: Record<string, string>;
      role: RoleName | null;
      session?: boolean;
      /** A person: an operator session or an OIDC access token. */
      person?: boolean;
      dispatcher?: Agent;
    }
  >();

  before(async () => {
    idp = await startIdentityProvider();
    t = await startTestPlatform('embedded', 'authorization', {
      roles: ['vault', 'api', 'acquirer'],
      env: {
        CARDHOLD_RATE_LIMIT_SIGN_IN_PER_MINUTE: '1000',
        CARDHOLD_OIDC_ISSUER: ISSUER,
        CARDHOLD_OIDC_AUDIENCE: AUDIENCE,
        CARDHOLD_OIDC_JWKS_URI: idp.jwksUri,
        CARDHOLD_OIDC_ROLE_MAP: JSON.stringify({
          viewers: 'operator-viewer',
          support: 'operator-support',
          revealers: 'operator-reveal',
          security: 'security-admin',
        }),
      },
    });
    const issue = async (body: Record<string, unknown>) => {
      const reply = await t.request<{ secret: string }>(
        'POST',
        `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`,
        {
          key: t.adminToken,
          body,
        },
      );
      assert.equal(reply.status, 201, reply.text);
      return reply.json.secret;
    };
    const asMerchant = { 'cardhold-merchant': t.merchantId };
    credentials.set('anonymous', { key: null, headers: {}, role: null });
    credentials.set('merchant-secret', {
      key: await issue({ scopes: [...secretKeyScopes] }),
      headers: {},
      role: 'merchant-secret',
    });
    credentials.set('merchant-publishable', {
      key: await issue({ kind: 'publishable', allowed_origins: [SHOP] }),
      headers: { origin: SHOP },
      role: 'merchant-publishable',
    });
    credentials.set('operator-viewer', {
      key: await idp.mint({ groups: ['viewers'] }),
      headers: asMerchant,
      role: 'operator-viewer',
      person: true,
    });
    credentials.set('operator-support', {
      key: await idp.mint({ groups: ['support'] }),
      headers: asMerchant,
      role: 'operator-support',
      person: true,
    });
    credentials.set('operator-reveal', {
      key: await idp.mint({ groups: ['revealers'] }),
      headers: asMerchant,
      role: 'operator-reveal',
      person: true,
    });
    credentials.set('security-admin', {
      key: await idp.mint({ groups: ['security'] }),
      headers: asMerchant,
      role: 'security-admin',
      person: true,
    });
    credentials.set('bootstrap admin token', {
      key: t.adminToken,
      headers: asMerchant,
      role: 'security-admin',
    });
    credentials.set('operator session (security-admin)', {
      key: await operatorSession(t),
      headers: asMerchant,
      role: 'security-admin',
      session: true,
      person: true,
    });
    const ca = await openLocalCa(t.dataDir);
    const apiCertificate = await ca.certificate('api');
    credentials.set('api service certificate', {
      key: null,
      headers: asMerchant,
      role: 'service-api',
      dispatcher: new Agent({
        connect: { ca: ca.caPem, cert: apiCertificate.certPem, key: apiCertificate.keyPem },
      }),
    });
    const vaultCertificate = await ca.certificate('vault');
    credentials.set('vault service certificate', {
      key: null,
      headers: {},
      role: 'service-vault',
      dispatcher: new Agent({
        connect: { ca: ca.caPem, cert: vaultCertificate.certPem, key: vaultCertificate.keyPem },
      }),
    });
  });
  after(async () => {
    await t?.close();
    await idp?.close();
  });

  test('every route declares its access, and the declaration matches the expected table', () => {
    const apps = t.platform.services.apps ?? {};
    let checked = 0;
    for (const [role, app] of Object.entries(apps) as [ServiceRole, NonNullable<(typeof apps)['vault']>][]) {
      for (const route of routeTable(app)) {
        const expected = expectedFor(role, route.method, route.url);
        assert.ok(expected, `${role} ${route.method} ${route.url} is missing from the expected table`);
        assert.equal(route.access, expected, `${role} ${route.method} ${route.url}`);
        checked++;
      }
    }
    const registered = new Set(
      Object.entries(apps).flatMap(([role, app]) =>
        routeTable(app as never).map((r) => `${role} ${r.method} ${r.url}`),
      ),
    );
    for (const key of Object.keys(expectedAccess))
      assert.ok(registered.has(key), `${key} is expected but not registered`);
    assert.ok(checked > 20);
  });

  test('every role has a credential in the matrix', () => {
    const covered = new Set([...credentials.values()].map((c) => c.role).filter(Boolean));
    assert.deepEqual(
      roleNames.filter((role) => !covered.has(role)),
      [],
    );
  });

  test("each credential is allowed exactly where its role holds the route's permission", async () => {
    const apps = t.platform.services.apps ?? {};
    const base: Partial<Record<ServiceRole, string>> = {
      vault: t.vaultUrl,
      api: t.apiUrl,
      acquirer: t.acquirerUrl,
    };
    const failures: string[] = [];
    let requests = 0;
    for (const [role, app] of Object.entries(apps) as [ServiceRole, NonNullable<(typeof apps)['vault']>][]) {
      // Sign-out last: it ends the session the other requests use.
      const routes = [...routeTable(app)].sort(
        (a, b) => Number(a.url === '/v1/auth/logout') - Number(b.url === '/v1/auth/logout'),
      );
      for (const route of routes) {
        if (route.url.startsWith('/docs') && route.url !== '/docs/json') continue; // one public docs route is enough
        const access = route.access;
        for (const [name, credential] of credentials) {
          // The shared development admin token is never accepted by the vault (no card data, no unseal).
          const vaultRefuses = role === 'vault' && name === 'bootstrap admin token';
          const allowed =
            access === 'public' ||
            (!vaultRefuses &&
              (access === 'session'
                ? credential.session === true
                : access === 'person'
                  ? credential.person === true
                  : credential.role !== null && rolePermissions[credential.role].includes(access)));
          const reply = await t.request(route.method, `${base[role]}${concretePath(route.url)}`, {
            key: credential.key,
            headers: credential.headers,
            ...(credential.dispatcher ? { dispatcher: credential.dispatcher } : {}),
            ...(['POST', 'PUT', 'PATCH'].includes(route.method) ? { body: {} } : {}),
          });
          requests++;
          const refused = reply.status === 401 || reply.status === 403;
          if (refused === allowed) {
            failures.push(
              `${name} ${route.method} ${route.url} → ${reply.status} (expected ${allowed ? 'allowed' : 'refused'})`,
            );
          }
        }
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(requests > 100);
  });

  test('people need MFA for card data, keys and the audit trail, not for the rest', async () => {
    const noMfa = await idp.mint({ groups: ['support'], amr: ['pwd'] });
    const read = await t.request<{ code: string }>('GET', `${t.vaultUrl}/v1/tokens?limit=1`, {
      key: noMfa,
      headers: { 'cardhold-merchant': t.merchantId },
    });
    assert.equal(read.status, 401);
    assert.equal(read.json.code, 'mfa_required');
    const merchant = await t.request('GET', `${t.apiUrl}/v1/merchants/${t.merchantId}`, { key: noMfa });
    assert.equal(merchant.status, 200);
    const admin = await idp.mint({ groups: ['security'], amr: ['pwd'] });
    const audit = await t.request<{ code: string }>('POST', `${t.apiUrl}/v1/admin/audit/verify`, {
      key: admin,
      body: {},
    });
    assert.equal(audit.json.code, 'mfa_required');
    const denied = await t.adminSql<{ reason: string }[]>`
      select reason from audit.records where action = 'access.denied' and reason = 'mfa_required'`;
    assert.ok(denied.length >= 2, 'each refusal is recorded');
  });

  test('a full card number is revealed only to a person with tokens:reveal, fresh MFA and a reason', async () => {
    const created = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
      body: { pan: testCards.mastercard, exp_month: 11, exp_year: futureYear, holder_name: 'A Holder' },
    });
    const id = created.json.token.id;
    const url = `${t.vaultUrl}/v1/tokens/${id}/reveal`;
    const asMerchant = { 'cardhold-merchant': t.merchantId };
    const reason = 'chargeback 4411 needs the card number';
    const now = Math.floor(Date.now() / 1000);
    const fresh = await idp.mint({ groups: ['revealers'], authTime: now - 60 });
    const revealed = await t.request<{ pan: string; exp_month: number; holder_name: string }>('POST', url, {
      key: fresh,
      headers: asMerchant,
      body: { reason },
    });
    assert.equal(revealed.status, 200);
    assert.ok(revealed.json.pan === testCards.mastercard, 'the full number comes back');
    assert.equal(revealed.json.exp_month, 11);
    assert.equal(revealed.headers.get('cache-control'), 'no-store');
    const record = await t.adminSql<{ actor_type: string; details: { reason: string } }[]>`
      select actor_type, details from audit.records where action = 'token.reveal' and resource_id = ${id}`;
    assert.equal(record.length, 1);
    assert.equal(record[0]?.actor_type, 'user');
    assert.equal(record[0]?.details.reason, reason, 'the stated reason is on record');

    const stale = await idp.mint({ groups: ['revealers'], authTime: now - 20 * 60 });
    const old = await t.request<{ code: string }>('POST', url, {
      key: stale,
      headers: asMerchant,
      body: { reason },
    });
    assert.equal(old.status, 401);
    assert.equal(old.json.code, 'mfa_required');
    const noReason = await t.request<{ field: string }>('POST', url, {
      key: fresh,
      headers: asMerchant,
      body: { reason: 'x' },
    });
    assert.equal(noReason.status, 400);
    const support = credentials.get('operator-support')!.key as string;
    assert.equal(
      (await t.request('POST', url, { key: support, headers: asMerchant, body: { reason } })).status,
      403,
    );
    assert.equal(
      (await t.request('POST', url, { body: { reason } })).status,
      403,
      'a merchant key cannot reveal',
    );
    // A card number typed into the reason does not reach the trail.
    await t.request('POST', url, {
      key: fresh,
      headers: asMerchant,
      body: { reason: `customer said ${testCards.visa} on the phone` },
    });
    const texts = await t.adminSql<{ text: string }[]>`
      select details::text as text from audit.records where action = 'token.reveal' and resource_id = ${id}`;
    assert.equal(texts.length, 2);
    assert.ok(texts.every((r) => !r.text.includes(testCards.visa)));
  });

  test('a person confined to one merchant cannot see another merchant, its keys or its tokens', async () => {
    const other = await t.request<{ merchant: { id: string } }>('POST', `${t.apiUrl}/v1/merchants`, {
      key: t.adminToken,
      body: { name: 'Confined Ltd' },
    });
    const confined = await idp.mint({ groups: ['support'], merchant: other.json.merchant.id });
    const token = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
      body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
    });
    const missingMerchant = `mer_${'Z'.repeat(22)}`;
    const same = async (foreign: string, missing: string, headers: Record<string, string> = {}) => {
      const a = await t.request<Record<string, unknown>>('GET', foreign, { key: confined, headers });
      const b = await t.request<Record<string, unknown>>('GET', missing, { key: confined, headers });
      assert.equal(a.status, 404, foreign);
      assert.deepEqual(
        { status: a.status, code: a.json['code'], title: a.json['title'], detail: a.json['detail'] },
        { status: b.status, code: b.json['code'], title: b.json['title'], detail: b.json['detail'] },
      );
    };
    await same(`${t.apiUrl}/v1/merchants/${t.merchantId}`, `${t.apiUrl}/v1/merchants/${missingMerchant}`);
    await same(
      `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`,
      `${t.apiUrl}/v1/merchants/${missingMerchant}/api-keys`,
    );
    // Naming the other merchant in the header changes nothing: a confined person acts for its own.
    await same(
      `${t.vaultUrl}/v1/tokens/${token.json.token.id}`,
      `${t.vaultUrl}/v1/tokens/tok_${'Z'.repeat(22)}`,
      { 'cardhold-merchant': t.merchantId },
    );
    const own = await t.request('GET', `${t.apiUrl}/v1/merchants/${other.json.merchant.id}`, {
      key: confined,
    });
    assert.equal(own.status, 200, 'its own merchant is visible');
  });

  test('a security administrator confined to a merchant is refused at every route of platform administration', async () => {
    const confined = await idp.mint({ groups: ['security'], merchant: t.merchantId });
    const from = encodeURIComponent(new Date(Date.now() - 3600_000).toISOString());
    const to = encodeURIComponent(new Date(Date.now() + 3600_000).toISOString());
    const tries: [string, string, Record<string, unknown>?][] = [
      ['GET', `${t.apiUrl}/v1/admin/audit/records?from=${from}&to=${to}`],
      [
        'POST',
        `${t.apiUrl}/v1/operators`,
        { username: 'escalated', password: 'Escalated-passw0rd-42!', roles: ['operator-reveal'] },
      ],
      ['POST', `${t.apiUrl}/v1/merchants`, { name: 'By a confined admin' }],
      ['GET', `${t.vaultUrl}/v1/keys/inventory`],
      ['GET', `${t.apiUrl}/v1/auth/whoami`],
    ];
    for (const [method, url, body] of tries) {
      const reply = await t.request<{ code: string; detail: string }>(method, url, {
        key: confined,
        ...(body ? { body } : {}),
      });
      assert.equal(reply.status, 401, `${method} ${url}: ${reply.text}`);
      assert.equal(reply.json.code, 'unauthenticated');
      assert.match(reply.json.detail, /administers the whole platform/);
    }
    const operators = await t.adminSql<{ n: number }[]>`
      select count(*)::int as n from identity.operators where username = 'escalated'`;
    assert.equal(operators[0]?.n, 0, 'nothing was created');
  });

  test('a merchant named in the header that does not exist is a 404 naming the header, not a 500', async () => {
    const support = await idp.mint({ groups: ['support'] });
    const ghost = `mer_${'Q'.repeat(22)}`;
    const tries: [string, Record<string, unknown>][] = [
      [`${t.apiUrl}/v1/payment_intents`, { amount: 1000, currency: 'usd' }],
      [`${t.apiUrl}/v1/webhook_endpoints`, { url: 'https://example.com/hook', enabled_events: ['*'] }],
    ];
    for (const [url, body] of tries) {
      const reply = await t.request<{ code: string; field: string }>('POST', url, {
        key: support,
        headers: { 'cardhold-merchant': ghost },
        body,
      });
      assert.equal(reply.status, 404, `${url}: ${reply.text}`);
      assert.deepEqual([reply.json.code, reply.json.field], ['merchant_not_found', 'cardhold-merchant']);
    }
  });

  test('date-times and sequence numbers the schemas let through but the database cannot hold are a 400 naming the field', async () => {
    const to = encodeURIComponent(new Date(Date.now() + 3600_000).toISOString());
    const from = encodeURIComponent(new Date(Date.now() - 3600_000).toISOString());
    const tries: [string, string, Record<string, unknown> | undefined, string][] = [
      [
        'GET',
        `${t.apiUrl}/v1/admin/audit/records?from=${from}&to=${to}&after_seq=9999999999999999999`,
        undefined,
        'after_seq',
      ],
      ['GET', `${t.apiUrl}/v1/admin/audit/records?from=0000-01-01T00:00:00Z&to=${to}`, undefined, 'from'],
      [
        'POST',
        `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`,
        { expires_at: '9999-12-31T23:59:60Z' },
        'expires_at',
      ],
    ];
    for (const [method, url, body, field] of tries) {
      const reply = await t.request<{ code: string; field: string }>(method, url, {
        key: t.adminToken,
        ...(body ? { body } : {}),
      });
      assert.equal(reply.status, 400, `${url}: ${reply.text}`);
      assert.deepEqual([reply.json.code, reply.json.field], ['request_invalid', field]);
    }
  });

  test('forged and misdirected tokens are refused at the door', async () => {
    const wrongAudience = await idp.mint({ groups: ['security'], audience: 'someone-else' });
    const [header, payload] = wrongAudience.split('.');
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'test-1' })).toString('base64url')}.${payload}.`;
    for (const token of [wrongAudience, unsigned, `${header}.${payload}.AAAA`]) {
      const reply = await t.request<{ code: string }>('GET', `${t.apiUrl}/v1/merchants/${t.merchantId}`, {
        key: token,
      });
      assert.equal(reply.status, 401);
      assert.equal(reply.json.code, 'unauthenticated');
    }
  });

  test('from the vault’s own origin (the hosted fields), a publishable key needs an allowed embedding origin', async () => {
    const pk = credentials.get('merchant-publishable')!.key as string;
    const body = { pan: testCards.visa, exp_month: 12, exp_year: futureYear };
    const vaultOrigin = new URL(t.vaultUrl).origin;
    const tokenize = (headers: Record<string, string>) =>
      t.request('POST', `${t.vaultUrl}/v1/tokens`, { key: pk, body, headers });
    const embedded = { origin: vaultOrigin, 'cardhold-embedding-origin': SHOP };
    assert.equal((await tokenize(embedded)).status, 201);
    assert.equal((await tokenize({ ...embedded, 'sec-fetch-site': 'same-origin' })).status, 201);
    for (const headers of [
      { origin: vaultOrigin },
      { origin: vaultOrigin, 'cardhold-embedding-origin': 'https://evil.example' },
      { origin: 'https://evil.example', 'cardhold-embedding-origin': SHOP },
      { ...embedded, 'sec-fetch-site': 'cross-site' },
    ] as Record<string, string>[]) {
      assert.equal((await tokenize(headers)).status, 403, JSON.stringify(headers));
    }
  });

  test('a publishable key tokenizes only from its allowed origins, and does nothing else', async () => {
    const pk = credentials.get('merchant-publishable')!.key as string;
    const body = { pan: testCards.visa, exp_month: 12, exp_year: futureYear };
    const ok = await t.request('POST', `${t.vaultUrl}/v1/tokens`, {
      key: pk,
      body,
      headers: { origin: SHOP },
    });
    assert.equal(ok.status, 201);
    for (const headers of [{}, { origin: 'https://evil.example' }] as Record<string, string>[]) {
      const refused = await t.request<{ code: string }>('POST', `${t.vaultUrl}/v1/tokens`, {
        key: pk,
        body,
        headers,
      });
      assert.equal(refused.status, 403);
    }
    const read = await t.request('GET', `${t.vaultUrl}/v1/tokens?limit=1`, {
      key: pk,
      headers: { origin: SHOP },
    });
    assert.equal(read.status, 403);
    const tooMuch = await t.request<{ code: string; field: string }>(
      'POST',
      `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`,
      {
        key: t.adminToken,
        body: { kind: 'publishable', allowed_origins: [SHOP], scopes: ['tokens:read'] },
      },
    );
    assert.equal(tooMuch.status, 400);
    assert.equal(tooMuch.json.field, 'scopes');
    const noOrigins = await t.request<{ field: string }>(
      'POST',
      `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`,
      {
        key: t.adminToken,
        body: { kind: 'publishable' },
      },
    );
    assert.equal(noOrigins.status, 400);
    assert.equal(noOrigins.json.field, 'allowed_origins');
    // Origins as browsers send them, and https except on a developer's own machine.
    const issueWith = (origin: string) =>
      t.request<{ field?: string }>('POST', `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`, {
        key: t.adminToken,
        body: { kind: 'publishable', allowed_origins: [origin] },
      });
    for (const origin of ['http://shop.example', 'https://Shop.Example', 'https://shop.example:443']) {
      const refused = await issueWith(origin);
      assert.deepEqual([refused.status, refused.json.field], [400, 'allowed_origins'], origin);
    }
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080', 'https://shop.example:8443']) {
      assert.equal((await issueWith(origin)).status, 201, origin);
    }
  });
});

describe('tenant isolation and key rotation (embedded)', () => {
  let t: TestPlatform;
  let otherKey: string;
  let otherMerchant: string;
  before(async () => {
    t = await startTestPlatform('embedded', 'tenancy', { env: { CARDHOLD_API_KEY_CACHE_SECONDS: '0' } });
    const made = await t.request<{ merchant: { id: string }; api_key: { secret: string } }>(
      'POST',
      `${t.apiUrl}/v1/merchants`,
      {
        key: t.adminToken,
        body: { name: 'Other Ltd' },
      },
    );
    otherKey = made.json.api_key.secret;
    otherMerchant = made.json.merchant.id;
  });
  after(async () => t?.close());

  test("another merchant's tokens and CVV slots answer exactly like missing ones", async () => {
    const mine = await t.request<{ token: { id: string; fingerprint: string }; cvv_slot: { id: string } }>(
      'POST',
      `${t.vaultUrl}/v1/tokens`,
      { body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear, cvv: '739' } },
    );
    const { id } = mine.json.token;
    const slot = mine.json.cvv_slot.id;
    const missingToken = `tok_${'Z'.repeat(22)}`;
    const missingSlot = `cvv_${'Z'.repeat(22)}`;
    const same = async (method: string, foreign: string, missing: string, body?: unknown) => {
      const a = await t.request<Record<string, unknown>>(method, foreign, { key: otherKey, body });
      const b = await t.request<Record<string, unknown>>(method, missing, { key: otherKey, body });
      assert.equal(a.status, 404, `${method} ${foreign}`);
      assert.deepEqual(
        { status: a.status, code: a.json['code'], title: a.json['title'], detail: a.json['detail'] },
        { status: b.status, code: b.json['code'], title: b.json['title'], detail: b.json['detail'] },
      );
    };
    await same('GET', `${t.vaultUrl}/v1/tokens/${id}`, `${t.vaultUrl}/v1/tokens/${missingToken}`);
    await same('DELETE', `${t.vaultUrl}/v1/tokens/${id}`, `${t.vaultUrl}/v1/tokens/${missingToken}`);
    await same(
      'POST',
      `${t.vaultUrl}/v1/tokens/${id}/cvv-slots`,
      `${t.vaultUrl}/v1/tokens/${missingToken}/cvv-slots`,
      { cvv: '739' },
    );
    await same('GET', `${t.vaultUrl}/v1/cvv-slots/${slot}`, `${t.vaultUrl}/v1/cvv-slots/${missingSlot}`);
    await same('DELETE', `${t.vaultUrl}/v1/cvv-slots/${slot}`, `${t.vaultUrl}/v1/cvv-slots/${missingSlot}`);
    const search = await t.request<{ data: unknown[] }>(
      'GET',
      `${t.vaultUrl}/v1/tokens?fingerprint=${mine.json.token.fingerprint}`,
      { key: otherKey },
    );
    assert.deepEqual(search.json.data, [], 'a fingerprint from another merchant finds nothing');
    // Still there for its owner.
    assert.equal((await t.request('GET', `${t.vaultUrl}/v1/tokens/${id}`)).status, 200);
    assert.equal((await t.request('GET', `${t.vaultUrl}/v1/cvv-slots/${slot}`)).status, 200);
  });

  test('key rotation: old and new keys both work during the overlap, then only the new one', async () => {
    const first = await t.request<{ id: string; secret: string }>(
      'POST',
      `${t.apiUrl}/v1/merchants/${otherMerchant}/api-keys`,
      {
        key: t.adminToken,
        body: { label: 'to rotate' },
      },
    );
    const rotated = await t.request<{ id: string; secret: string; label: string }>(
      'POST',
      `${t.apiUrl}/v1/merchants/${otherMerchant}/api-keys/${first.json.id}/rotate`,
      // Five seconds: room for the two requests below on a loaded machine.
      { key: t.adminToken, body: { overlap_seconds: 5 } },
    );
    assert.equal(rotated.status, 201);
    assert.equal(rotated.json.label, 'to rotate');
    const works = async (key: string) =>
      (await t.request('GET', `${t.vaultUrl}/v1/tokens?limit=1`, { key })).status;
    assert.equal(await works(first.json.secret), 200, 'old key during the overlap');
    assert.equal(await works(rotated.json.secret), 200, 'new key');
    await new Promise((resolve) => setTimeout(resolve, 5300));
    assert.equal(await works(first.json.secret), 401, 'old key after the overlap');
    assert.equal(await works(rotated.json.secret), 200, 'new key after the overlap');
    const again = await t.request(
      'POST',
      `${t.apiUrl}/v1/merchants/${otherMerchant}/api-keys/${first.json.id}/rotate`,
      {
        key: t.adminToken,
        body: { overlap_seconds: 0 },
      },
    );
    assert.equal(again.status, 404, 'a rotated key cannot be rotated twice');
    const listed = await t.request<{
      data: Array<{ id: string; rotated_to: string | null; last_used_at: string | null }>;
    }>('GET', `${t.apiUrl}/v1/merchants/${otherMerchant}/api-keys`, { key: t.adminToken });
    const old = listed.json.data.find((k) => k.id === first.json.id);
    assert.equal(old?.rotated_to, rotated.json.id);
    assert.ok(old?.last_used_at, 'last use is recorded');
    const rotations =
      await t.adminSql`select 1 from audit.records where action = 'api_key.rotate' and resource_id = ${first.json.id}`;
    assert.equal(rotations.length, 1);
  });
});

for (const backend of backends()) {
  describe(`rate limiting of tokenization (${backend})`, () => {
    let t: TestPlatform;
    before(async () => {
      t = await startTestPlatform(backend, 'rate-limit', {
        env: { CARDHOLD_RATE_LIMIT_TOKENIZE_PER_MINUTE: '3' },
      });
    });
    after(async () => t?.close());

    test('a credential over its limit gets 429 with retry-after; others and reads are unaffected', async () => {
      const body = { pan: testCards.visa, exp_month: 12, exp_year: futureYear };
      for (let i = 0; i < 3; i++) {
        assert.equal((await t.request('POST', `${t.vaultUrl}/v1/tokens`, { body })).status, 201);
      }
      const limited = await t.request<{ code: string; status: number }>('POST', `${t.vaultUrl}/v1/tokens`, {
        body,
      });
      assert.equal(limited.status, 429);
      assert.equal(limited.json.code, 'rate_limited');
      assert.equal(limited.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
      const batch = await t.request('POST', `${t.vaultUrl}/v1/tokens/batch`, { body: { cards: [body] } });
      assert.equal(batch.status, 429, 'the batch route shares the limit');
      assert.equal(
        (await t.request('GET', `${t.vaultUrl}/v1/tokens?limit=1`)).status,
        200,
        'reads are not limited',
      );
      const other = await t.request<{ api_key: { secret: string } }>('POST', `${t.apiUrl}/v1/merchants`, {
        key: t.adminToken,
        body: { name: 'Unlimited Ltd' },
      });
      const fresh = await t.request('POST', `${t.vaultUrl}/v1/tokens`, {
        key: other.json.api_key.secret,
        body,
      });
      assert.equal(fresh.status, 201, 'another credential has its own budget');
    });
  });
}
