import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, skipWithoutChromium } from '../../test/browser.ts';
import { testCards } from '../../test/fixtures/cards.ts';
import { futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { AUDIENCE, ISSUER, startIdentityProvider } from '../../test/identity-provider.ts';
import { dashboardCsp } from './dashboard-csp.ts';

const CLIENT_ID = 'cardhold-dashboard';

describe('operator dashboard: sign-in through the identity provider, in Chromium', {
  skip: skipWithoutChromium,
}, () => {
  let t: TestPlatform;
  let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
  let browser: Browser;
  let dashboardUrl: string;
  const consoleLines: string[] = [];

  before(async () => {
    idp = await startIdentityProvider();
    t = await startTestPlatform('embedded', 'dashboard-oidc', {
      roles: ['vault', 'api'],
      env: {
        CARDHOLD_OIDC_ISSUER: ISSUER,
        CARDHOLD_OIDC_AUDIENCE: AUDIENCE,
        CARDHOLD_OIDC_JWKS_URI: idp.jwksUri,
        CARDHOLD_OIDC_ROLE_MAP: JSON.stringify({
          support: 'operator-support',
          security: 'security-admin',
          revealers: 'operator-reveal',
        }),
        CARDHOLD_OIDC_DASHBOARD_CLIENT_ID: CLIENT_ID,
        CARDHOLD_OIDC_AUTHORIZATION_ENDPOINT: idp.authorizationEndpoint,
        CARDHOLD_OIDC_TOKEN_ENDPOINT: idp.tokenEndpoint,
      },
    });
    dashboardUrl = `${t.apiUrl}/dashboard`;
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await t?.close();
    await idp?.close();
  });

  async function openDashboard(): Promise<Page> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.on('console', (message) => consoleLines.push(message.text()));
    await page.goto(dashboardUrl);
    return page;
  }

  test('the page names the provider and allows its token endpoint, and nothing else more', async () => {
    const reply = await t.request('GET', dashboardUrl, { key: null });
    assert.equal(reply.status, 200);
    const csp = reply.headers.get('content-security-policy') ?? '';
    const providerOrigin = new URL(idp.tokenEndpoint).origin;
    assert.equal(csp, dashboardCsp(new URL(t.vaultUrl).origin, providerOrigin));
    assert.match(csp, new RegExp(`connect-src 'self' [^;]+ ${providerOrigin.replaceAll('.', '\\.')}(;|$)`));
    assert.match(reply.text, /<meta name="cardhold-oidc" content="[^"]*cardhold-dashboard[^"]*">/);
    assert.throws(() => dashboardCsp(undefined, 'http://idp.example'), /loopback/);
  });

  test('sign in with the provider: code with PKCE, the token at the api, the views the roles allow', async () => {
    idp.state.user = { subject: 'alice@example.test', groups: ['support'], amr: ['pwd', 'otp'] };
    const page = await openDashboard();
    await page.click('#oidc-sign-in');
    await page.waitForSelector('#operator');
    assert.equal(await page.textContent('#operator'), 'alice@example.test (operator-support)');
    // The code left the address bar, and the PKCE state left the tab's storage.
    assert.equal(new URL(page.url()).search, '');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);

    // What the provider saw: an S256 challenge for this client, the audience, and a verifier that matched.
    const authorize = idp.state.authorizeRequests.at(-1);
    assert.equal(authorize?.get('client_id'), CLIENT_ID);
    assert.equal(authorize?.get('code_challenge_method'), 'S256');
    assert.equal(authorize?.get('audience'), AUDIENCE);
    assert.equal(authorize?.get('redirect_uri'), dashboardUrl);
    const exchange = idp.state.tokenRequests.at(-1);
    assert.equal(exchange?.get('grant_type'), 'authorization_code');
    assert.ok((exchange?.get('code_verifier') ?? '').length >= 43, 'a PKCE verifier of 32 random bytes');

    // operator-support, platform-wide, picks the merchant, then reads its payments (through the api,
    // with the provider's token) but is refused the audit trail, as the API decides.
    const settled = async (name: string) => {
      await page.click(`a[href="#/${name}"]`);
      const view = page.locator(`#view-${name}:not([data-state="loading"])`);
      await view.waitFor();
      return view.getAttribute('data-state');
    };
    await page.fill('#merchant', t.merchantId);
    await page.click('#merchant-picker button[type="submit"]');
    assert.equal(await settled('payments'), 'loaded');
    assert.equal(await settled('audit'), 'denied');
    // A reload forgets the in-memory session: the sign-in form is back.
    await page.reload();
    await page.waitForSelector('#oidc-sign-in');
    assert.equal(await page.$('#operator'), null);
    await page.context().close();

    // The api recorded who it was: the provider's subject, as a user.
    const reads = await t.adminSql<{ actor_id: string; actor_type: string }[]>`
      select actor_id, actor_type from audit.records where actor_id = 'alice@example.test' limit 1`;
    assert.equal(reads[0]?.actor_type, 'user');
  });

  test('a provider redirect whose state is not the one this page sent is refused, and no code is exchanged', async () => {
    idp.state.user = { subject: 'alice@example.test', groups: ['support'] };
    const page = await openDashboard();
    // Someone else's authorization answer, swapped in for ours (login CSRF): same shape, other state.
    await page.route(`${idp.authorizationEndpoint}?*`, async (route) => {
      const answer = await route.fetch({ maxRedirects: 0 });
      const back = new URL(answer.headers()['location'] ?? '');
      back.searchParams.set('state', 'someone-elses-state');
      await route.fulfill({ status: 302, headers: { location: back.toString() } });
    });
    const exchangesBefore = idp.state.tokenRequests.length;
    await page.click('#oidc-sign-in');
    await page.waitForSelector('#login-error:not(:empty)');
    assert.match((await page.textContent('#login-error')) ?? '', /does not belong to this sign-in/);
    assert.equal(idp.state.tokenRequests.length, exchangesBefore, 'the code was never exchanged');
    assert.equal(await page.$('#operator'), null);
    assert.equal(new URL(page.url()).search, '', 'the code left the address bar');
    await page.context().close();
  });

  test('a reveal after the provider sign-in is 15 minutes old sends the person back to the provider', async () => {
    const created = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
      body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
    });
    assert.equal(created.status, 201, created.text);
    const tokenId = created.json.token.id;
    idp.state.user = {
      subject: 'rita@example.test',
      groups: ['revealers'],
      amr: ['pwd', 'otp'],
      authTime: Math.floor(Date.now() / 1000) - 20 * 60,
    };
    const page = await openDashboard();
    await page.click('#oidc-sign-in');
    await page.waitForSelector('#operator');
    await page.fill('#merchant', t.merchantId);
    await page.click('#merchant-picker button[type="submit"]');
    const reveal = async () => {
      await page.evaluate(`location.hash = ${JSON.stringify(`#/tokens/${tokenId}`)}`);
      await page.locator('#reveal').click();
      await page.locator('#reveal-reason').fill('Chargeback investigation, case 4712');
      await page.locator('#reveal-dialog button[type=submit]').click();
    };
    await reveal();
    await page.waitForSelector('#reauthenticate');
    assert.match((await page.textContent('#reveal-message')) ?? '', /more than 15 minutes old/);
    assert.equal((await page.textContent('#revealed')) ?? '', '', 'nothing revealed');
    assert.equal(await page.$('#reveal-code:visible'), null, 'no authenticator code is asked for');

    // The provider authenticates her again (max_age=0); the fresh sign-in may reveal.
    idp.state.user = { subject: 'rita@example.test', groups: ['revealers'], amr: ['pwd', 'otp'] };
    await page.click('#reauthenticate');
    await page.waitForSelector('#operator');
    assert.equal(idp.state.authorizeRequests.at(-1)?.get('max_age'), '0');
    await page.fill('#merchant', t.merchantId);
    await page.click('#merchant-picker button[type="submit"]');
    await reveal();
    await page.waitForSelector('#revealed:not(:empty)');
    assert.equal(await page.textContent('#revealed'), testCards.visa);
    await page.context().close();
  });

  test('an answer that does not belong to this sign-in, or a token cardhold refuses, signs nobody in', async () => {
    const page = await openDashboard();
    // A code and state arriving without a sign-in started here (a forged or replayed redirect).
    await page.goto(`${dashboardUrl}?code=forged&state=forged`);
    await page.waitForSelector('#login-error');
    assert.match((await page.textContent('#login-error')) ?? '', /does not belong to this sign-in/);
    assert.equal(new URL(page.url()).search, '', 'the forged code left the address bar');
    assert.equal(idp.state.tokenRequests.filter((r) => r.get('code') === 'forged').length, 0);

    // The provider signs in someone whose groups map to no cardhold role: the api refuses the token.
    idp.state.user = { subject: 'mallory@example.test', groups: ['marketing'] };
    await page.click('#oidc-sign-in');
    await page.waitForSelector('#login-error:not(:empty)');
    assert.match((await page.textContent('#login-error')) ?? '', /cardhold refused the token/);
    assert.equal(await page.$('#operator'), null);
    await page.context().close();
  });
});
