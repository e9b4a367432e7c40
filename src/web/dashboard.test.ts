import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { type TOTP, URI } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, skipWithoutChromium } from '../../test/browser.ts';
import { acquirerTestCards, allTestPans, testCvvs } from '../../test/fixtures/cards.ts';
import { outputDir } from '../../test/global-setup.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import type { AdminContext, Operators } from '../auth/operators/operators.ts';
import { runScan } from '../scan/run-scan.ts';
import { randomBase62 } from '../vault/identifiers.ts';
import { dashboardCsp } from './dashboard-csp.ts';

const screenshots = path.join(outputDir, 'screenshots');
const reportDir = path.join(outputDir, 'dashboard');
const scanReportFile = path.join(reportDir, 'scan-report.json');
const pan = acquirerTestCards.approve;
const REASON = 'Chargeback investigation, case 4711';

/** Every known test card, as digits and grouped by four: none may appear where the test looks. */
const cardForms = allTestPans.flatMap((p) => [p, p.replace(/(\d{4})(?=\d)/g, '$1 ')]);
const assertNoCard = (text: string, where: string) => {
  for (const form of cardForms) assert.ok(!text.includes(form), `${where} holds a card number`);
};

interface Account {
  username: string;
  password: string;
  totp: TOTP;
}

interface Seen {
  url: string;
  method: string;
  status: number;
  body: string;
  /** The browser gave no body within 5 s (a preflight or a 204 has none to give). */
  unread?: boolean;
}

/** A signed-in browser page of one operator, with every response it received and its console. */
interface OperatorPage {
  page: Page;
  responses: Seen[];
  console: string[];
  html: string[];
  /** Response bodies still being read; `bodiesRead` waits for them. */
  pending: Array<Promise<unknown>>;
}

const bodiesRead = (seen: OperatorPage) => Promise.all(seen.pending);

type ViewName = 'payments' | 'tokens' | 'audit' | 'keys' | 'webhooks' | 'scan';
type Role = 'operator-viewer' | 'operator-support' | 'operator-reveal' | 'security-admin';

/** Who may see each view (the API's permissions), written down here independently of the code. */
const mayView: Record<ViewName, Role[]> = {
  payments: ['operator-viewer', 'operator-support'],
  tokens: ['operator-support', 'operator-reveal'],
  audit: ['security-admin'],
  keys: ['security-admin'],
  webhooks: ['operator-support'],
  scan: ['security-admin'],
};
const roles: Role[] = ['operator-viewer', 'operator-support', 'operator-reveal', 'security-admin'];
const views = Object.keys(mayView) as ViewName[];

/** A code from the authenticator for the next 30-second step: the one enrolment used is spent. */
const nextCode = (totp: TOTP) => totp.generate({ timestamp: Date.now() + 30_000 });

describe('operator dashboard, in Chromium', { skip: skipWithoutChromium }, () => {
  let t: TestPlatform;
  let browser: Browser;
  let operators: Operators;
  let admin: AdminContext;
  let dashboardUrl: string;
  let tokenId: string;
  const payments: Record<'capture' | 'cancel' | 'refund', string> = { capture: '', cancel: '', refund: '' };
  const pages = new Map<Role, OperatorPage>();
  const allPages: OperatorPage[] = [];
  let scanDir: string;

  const api = <T = unknown>(method: string, p: string, key: string | null, body?: unknown) =>
    t.request<T>(method, `${t.apiUrl}${p}`, { key, ...(body === undefined ? {} : { body }) });

  /** Created by the administrator, then enrolled and with its own password, through the api. */
  async function enrolledAccount(role: Role): Promise<Account> {
    const username = `op-${randomBase62(8).toLowerCase()}`;
    const initial = `Initial-${randomBase62(10)}-1`;
    await operators.create(admin, { username, password: initial, roles: [role] });
    const login = await api<{ challenge_token: string; enrolment_uri: string }>(
      'POST',
      '/v1/auth/login',
      null,
      {
        username,
        password: initial,
      },
    );
    assert.equal(login.status, 200, login.text);
    const totp = URI.parse(login.json.enrolment_uri) as TOTP;
    const mfa = await api<{ token: string }>('POST', '/v1/auth/mfa', null, {
      challenge_token: login.json.challenge_token,
      code: totp.generate(),
    });
    assert.equal(mfa.status, 200, mfa.text);
    const password = `Changed-${randomBase62(10)}-2`;
    const changed = await api('POST', '/v1/auth/password', mfa.json.token, {
      current_password: initial,
      new_password: password,
    });
    assert.equal(changed.status, 204, changed.text);
    await api('POST', '/v1/auth/logout', mfa.json.token);
    return { username, password, totp };
  }

  async function openPage(): Promise<OperatorPage> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const seen: OperatorPage = { page, responses: [], console: [], html: [], pending: [] };
    page.on('console', (message) => seen.console.push(`${message.type()}: ${message.text()}`));
    page.on('response', (response) => {
      const entry: Seen = {
        url: response.url(),
        method: response.request().method(),
        status: response.status(),
        body: '',
      };
      seen.responses.push(entry);
      const unread = new Promise<undefined>((resolve) => setTimeout(resolve, 5000, undefined));
      seen.pending.push(
        Promise.race([response.text().catch(() => ''), unread]).then((body) => {
          if (body === undefined) entry.unread = true;
          else entry.body = body;
        }),
      );
    });
    allPages.push(seen);
    await page.goto(dashboardUrl);
    await page.locator('#login').waitFor();
    return seen;
  }

  async function signIn(seen: OperatorPage, account: Account): Promise<void> {
    const { page } = seen;
    await page.locator('#username').fill(account.username);
    await page.locator('#password').fill(account.password);
    await page.locator('#login button[type=submit]').click();
    await page.locator('#code').waitFor();
    await page.locator('#code').fill(nextCode(account.totp));
    await page.locator('#mfa button[type=submit]').click();
    await page.locator('#nav a').first().waitFor();
  }

  async function chooseMerchant(seen: OperatorPage): Promise<void> {
    await seen.page.locator('#merchant').fill(t.merchantId);
    await seen.page.locator('#merchant-picker button').click();
  }

  /** Opens a view by its hash and waits until it has settled: loaded, denied or failed. */
  async function openView(seen: OperatorPage, hash: string, name: string): Promise<string> {
    // A string, because the test's own TypeScript has no DOM: the page's location, not a navigation.
    await seen.page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
    const settled = seen.page.locator(`#view-${name}:not([data-state="loading"])`);
    await settled.waitFor({ timeout: 20_000 });
    seen.html.push(await seen.page.content());
    return (await settled.getAttribute('data-state')) ?? '';
  }

  before(async () => {
    await mkdir(screenshots, { recursive: true });
    await mkdir(reportDir, { recursive: true });
    // The latest scan report, written by the scanner itself from a Dockerfile that breaks a rule.
    scanDir = await mkdtemp(path.join(tmpdir(), 'cardhold-dashboard-scan-'));
    await writeFile(
      path.join(scanDir, 'Dockerfile'),
      'FROM node:latest\nUSER root\nCMD ["node", "app.js"]\n',
    );
    const quiet = { write: () => true };
    await runScan(
      { paths: [path.join(scanDir, 'Dockerfile')], format: 'json', out: scanReportFile },
      { stdout: quiet, stderr: quiet, readStdin: async () => '' },
    );

    t = await startTestPlatform(backends().at(-1) ?? 'embedded', 'dashboard', {
      roles: ['vault', 'api', 'acquirer'],
      // Every operator of the test signs in from this one address: lift the per-address sign-in limit.
      env: { CARDHOLD_SCAN_REPORT_FILE: scanReportFile, CARDHOLD_RATE_LIMIT_SIGN_IN_PER_MINUTE: '1000' },
    });
    dashboardUrl = `${t.apiUrl}/dashboard`;
    operators = t.platform.services.operators as Operators;
    const root = await operators.bootstrap('root-admin', `Bootstrap-${randomBase62(10)}-3`);
    admin = {
      actor: { type: 'user', id: root.id },
      origin: { origin: '127.0.0.1', userAgent: 'dashboard-test', requestId: 'dashboard-test' },
    };

    // Data to look at: a token, three payments (to capture, to cancel, to refund) and a webhook
    // endpoint whose deliveries fail (nothing listens there), so they can be retried.
    const hook = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/webhook_endpoints`, {
      body: { url: 'http://127.0.0.1:9/hooks', enabled_events: ['*'] },
    });
    assert.equal(hook.status, 201, hook.text);
    const pay = async (capture: 'manual' | 'automatic') => {
      const created = await t.request<{ token: { id: string }; cvv_slot: { id: string } }>(
        'POST',
        `${t.vaultUrl}/v1/tokens`,
        { body: { pan, exp_month: 12, exp_year: futureYear, cvv: testCvvs.three, dedup: true } },
      );
      assert.ok(created.status === 201 || created.status === 200, created.text);
      tokenId = created.json.token.id;
      const payment = await t.request<{ id: string; status: string }>(
        'POST',
        `${t.apiUrl}/v1/payment_intents`,
        {
          body: {
            amount: 2500,
            currency: 'usd',
            confirm: true,
            capture_method: capture,
            payment_method: created.json.token.id,
            payment_method_options: { card: { cvc_token: created.json.cvv_slot.id } },
          },
        },
      );
      assert.equal(payment.status, 200, payment.text);
      return payment.json.id;
    };
    payments.capture = await pay('manual');
    payments.cancel = await pay('manual');
    payments.refund = await pay('automatic');

    browser = await launchChromium();
  });

  after(async () => {
    // No card number in any console line of any page of the run.
    for (const seen of allPages) for (const line of seen.console) assertNoCard(line, 'the browser console');
    await browser?.close();
    await t?.close();
    await rm(scanDir, { recursive: true, force: true });
  });

  test('the page, its script and its stylesheet: a strict CSP, no data, no cookie', async () => {
    const page = await t.request('GET', dashboardUrl, { key: null });
    assert.equal(page.status, 200);
    const vaultOrigin = new URL(t.vaultUrl).origin;
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.equal(csp, dashboardCsp(vaultOrigin));
    for (const directive of [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      `connect-src 'self' ${vaultOrigin}`,
      "frame-ancestors 'none'",
      "require-trusted-types-for 'script'",
      "trusted-types 'none'",
    ])
      assert.ok(csp.includes(directive), directive);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.equal(page.headers.get('set-cookie'), null);
    assert.doesNotMatch(
      page.text,
      /<script>|<style>|\sstyle=|\son[a-z]+=/i,
      'no inline script, style or handler',
    );
    const script = /<script src="([^"]+)" integrity="(sha384-[^"]+)"/.exec(page.text);
    assert.ok(script, 'the script is loaded with its integrity hash');
    const js = await t.request('GET', `${t.apiUrl}${script[1]}`, { key: null });
    assert.equal(js.status, 200);
    assert.doesNotMatch(
      js.text,
      /\beval\(|new Function\(|innerHTML|outerHTML|insertAdjacentHTML|document\.write|localStorage|document\.cookie/,
    );
    // sessionStorage holds one thing only: the OIDC sign-in's state and PKCE verifier, across the round
    // trip to the provider (src/web/client/dashboard/oidc.ts). Never a token.
    const storage = js.text.match(/sessionStorage[^;]*/g) ?? [];
    assert.ok(storage.length > 0, 'the OIDC sign-in keeps its pending pair');
    for (const use of storage)
      assert.match(use, /^sessionStorage\.(setItem|getItem|removeItem)\(PENDING\d*[,)]/, use);
  });

  test('first sign-in in the browser: password, TOTP enrolment, a new password; then the views', async () => {
    const username = `op-${randomBase62(8).toLowerCase()}`;
    const initial = `Initial-${randomBase62(10)}-1`;
    await operators.create(admin, { username, password: initial, roles: ['operator-viewer'] });
    const seen = await openPage();
    const { page } = seen;
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(initial);
    await page.locator('#login button[type=submit]').click();
    const uri = (await page.locator('#enrolment-uri').textContent()) ?? '';
    const totp = URI.parse(uri) as TOTP;
    await page.screenshot({ path: path.join(screenshots, 'dashboard-enrolment.png') });
    // A wrong code first: refused, with the one message sign-in has.
    await page.locator('#code').fill(String((Number(totp.generate()) + 1) % 1_000_000).padStart(6, '0'));
    await page.locator('#mfa button[type=submit]').click();
    await page.locator('#login-error:not(:empty)').waitFor();
    assert.match((await page.locator('#login-error').textContent()) ?? '', /Sign-in refused/);
    await page.locator('#code').fill(totp.generate());
    await page.locator('#mfa button[type=submit]').click();
    await page.locator('#new-password').fill(`Changed-${randomBase62(10)}-2`);
    await page.locator('#password-change button[type=submit]').click();
    await page.locator('#nav a').first().waitFor();
    assert.match(
      (await page.locator('#operator').textContent()) ?? '',
      new RegExp(`${username} \\(operator-viewer\\)`),
    );
    await chooseMerchant(seen);
    assert.equal(await openView(seen, '#/payments', 'payments'), 'loaded');
    await page.screenshot({ path: path.join(screenshots, 'dashboard-payments.png'), fullPage: true });
    // The session is in memory only: no cookie, nothing in storage.
    assert.deepEqual(await page.context().cookies(), []);
    assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
    // Sign out ends it on the server too.
    await page.locator('#logout').click();
    await page.locator('#login').waitFor();
  });

  test('ten failures lock the account: the browser is refused even with the right password and code', async () => {
    const account = await enrolledAccount('operator-viewer');
    for (let i = 0; i < 10; i++) {
      const wrong = await api('POST', '/v1/auth/login', null, {
        username: account.username,
        password: 'Wrong-passw0rd-x',
      });
      assert.equal(wrong.status, 401);
    }
    const seen = await openPage();
    const { page } = seen;
    await page.locator('#username').fill(account.username);
    await page.locator('#password').fill(account.password);
    await page.locator('#login button[type=submit]').click();
    await page.locator('#login-error:not(:empty)').waitFor();
    const message = (await page.locator('#login-error').textContent()) ?? '';
    assert.match(message, /locked \(10 failed attempts lock it for 30 minutes\)/);
    assert.equal(await page.locator('#nav a').count(), 0, 'not signed in');
    await page.screenshot({ path: path.join(screenshots, 'dashboard-locked.png') });
    const [operator] = await t.adminSql<{ id: string; locked_until: Date | null }[]>`
      select id, locked_until from identity.operators where username = ${account.username}`;
    assert.ok(
      operator?.locked_until && operator.locked_until.getTime() > Date.now(),
      'locked in the database',
    );
    const locked = await t.adminSql`select 1 from audit.records
      where action = 'auth.failure' and reason = 'locked' and actor_id = ${operator.id}`;
    assert.ok(locked.length >= 1, 'the refusal while locked is recorded');
    // Unlocked by an administrator, the same person signs in.
    await operators.unlock(admin, operator.id);
    await signIn(seen, account);
  });

  test('each view loads for the roles that may see it and shows access denied to the others', async () => {
    for (const role of roles) {
      const seen = await openPage();
      await signIn(seen, await enrolledAccount(role));
      await chooseMerchant(seen);
      pages.set(role, seen);
      for (const name of views) {
        const state = await openView(seen, `#/${name}`, name);
        const may = mayView[name].includes(role);
        assert.equal(state, may ? 'loaded' : 'denied', `${role} on ${name}: ${state}`);
        if (!may) {
          assert.match(
            (await seen.page.locator(`#view-${name} .denied`).textContent()) ?? '',
            /Access denied/,
            `${role} sees why on ${name}`,
          );
        }
      }
      await seen.page.screenshot({ path: path.join(screenshots, `dashboard-${role}.png`), fullPage: true });
    }
    // What the views showed, for those that may.
    const support = pages.get('operator-support') as OperatorPage;
    await openView(support, '#/payments', 'payments');
    for (const id of Object.values(payments))
      await support.page.locator(`a[href="#/payments/${id}"]`).waitFor();
    await openView(support, '#/tokens', 'tokens');
    assert.match((await support.page.locator('#view-tokens table').textContent()) ?? '', /•••• 4242/);
    await openView(support, '#/webhooks', 'webhooks');
    await support.page.locator('#view-webhooks a[href^="#/webhooks/we_"]').first().click();
    await support.page.locator('#view-webhooks[data-state="loaded"] h3').waitFor();
    const security = pages.get('security-admin') as OperatorPage;
    await openView(security, '#/keys', 'keys');
    const keysText = (await security.page.locator('#view-keys').textContent()) ?? '';
    assert.match(keysText, /kek/);
    assert.match(keysText, /master/);
    assert.match(keysText, /certificate:ca\.crt/);
    await openView(security, '#/scan', 'scan');
    assert.equal(await security.page.locator('#scan-result').textContent(), 'fail');
    await openView(security, '#/audit', 'audit');
    assert.match(
      (await security.page.locator('#verification').textContent()) ?? '',
      /^Chain verified: \d+ records/,
    );
    await security.page.screenshot({ path: path.join(screenshots, 'dashboard-audit.png'), fullPage: true });
  });

  test('operator-support captures, cancels and refunds in the browser; operator-viewer is offered none', async () => {
    const support = pages.get('operator-support') as OperatorPage;
    const act = async (id: string, button: string, expected: RegExp) => {
      await openView(support, `#/payments/${id}`, 'payments');
      await support.page.locator(`#view-payments .actions button:text-is("${button}")`).click();
      await support.page.locator('#payment-state').filter({ hasText: expected }).waitFor({ timeout: 20_000 });
    };
    await act(payments.capture, 'Capture', /^succeeded$/);
    await act(payments.cancel, 'Cancel', /^canceled$/);
    await openView(support, `#/payments/${payments.refund}`, 'payments');
    await support.page.locator('#refund-amount').fill('1000');
    await support.page.locator('#view-payments .actions button:text-is("Refund")').click();
    await support.page.locator('#view-payments table[aria-label="Refunds"]').waitFor({ timeout: 20_000 });
    const refunds = await t.request<{ data: Array<{ amount: number }> }>(
      'GET',
      `${t.apiUrl}/v1/refunds?payment_intent=${payments.refund}`,
    );
    assert.deepEqual(
      refunds.json.data.map((r) => r.amount),
      [1000],
    );
    const captured = await t.request<{ status: string }>(
      'GET',
      `${t.apiUrl}/v1/payment_intents/${payments.capture}`,
    );
    assert.equal(captured.json.status, 'succeeded');
    await support.page.screenshot({ path: path.join(screenshots, 'dashboard-refund.png'), fullPage: true });
    const attempts = (await support.page.locator('table[aria-label="Attempts"]').textContent()) ?? '';
    assert.match(attempts, /authorize/);
    assert.match(attempts, /refund/);

    const viewer = pages.get('operator-viewer') as OperatorPage;
    await openView(viewer, `#/payments/${payments.capture}`, 'payments');
    assert.equal(await viewer.page.locator('#view-payments .actions').count(), 0, 'no actions offered');
    // And the api refuses them whatever a page would send: the viewer's session cannot capture.
    const refused = await viewer.page.evaluate(
      (id) =>
        fetch(`/v1/payment_intents/${id}/capture`, { method: 'POST', credentials: 'include' }).then(
          async (r) => (await r.text()) && r.status,
        ),
      payments.cancel,
    );
    assert.equal(refused, 401, 'without the bearer header nothing is authenticated: no ambient credential');

    // Webhook deliveries: failed ones are retried from the endpoint's view.
    await openView(support, '#/webhooks', 'webhooks');
    await support.page.locator('#view-webhooks a[href^="#/webhooks/we_"]').first().click();
    const retry = support.page.locator('#view-webhooks button[data-delivery]').first();
    await retry.waitFor({ timeout: 20_000 });
    const deliveryId = (await retry.getAttribute('data-delivery')) ?? '';
    await retry.click();
    await support.page.locator('#notice', { hasText: `Delivery ${deliveryId} sent again.` }).waitFor();
    const retried = await t.adminSql`select 1 from audit.records
      where action = 'webhook_delivery.retry' and resource_id = ${deliveryId}`;
    assert.equal(retried.length, 1, 'the retry is recorded');
  });

  test('reveal: a reason is required, the number comes from the vault only, and the audit view lists it', async () => {
    const revealer = pages.get('operator-reveal') as OperatorPage;
    const { page } = revealer;
    await openView(revealer, '#/tokens', 'tokens');
    await page.locator(`a[href="#/tokens/${tokenId}"]`).first().click();
    await page.locator('#reveal').click();
    await page.locator('#reveal-reason').fill('because');
    await page.locator('#reveal-dialog button[type=submit]').click();
    assert.match((await page.locator('#reveal-message').textContent()) ?? '', /State the reason/);
    assert.ok(
      !revealer.responses.some((r) => r.url.endsWith('/reveal')),
      'no reveal is sent without a reason',
    );
    await page.locator('#reveal-reason').fill(REASON);
    await page.locator('#reveal-dialog button[type=submit]').click();
    await page.locator('#revealed', { hasText: pan }).waitFor();
    await bodiesRead(revealer);
    // The full number reached the page from the vault's origin, in the reveal's answer and nowhere else.
    const vaultOrigin = new URL(t.vaultUrl).origin;
    const withCard = revealer.responses.filter((r) => r.body.includes(pan));
    assert.equal(withCard.length, 1, 'one response held the card number');
    assert.equal(withCard[0]?.url, `${vaultOrigin}/v1/tokens/${tokenId}/reveal`);
    assert.equal(new URL(withCard[0]?.url ?? '').origin, vaultOrigin);
    await page.locator('#reveal-close').click();
    await page.locator('#reveal-dialog').waitFor({ state: 'detached' });
    assertNoCard(await page.content(), 'the page after the reveal dialog closed');
    revealer.html.push(await page.content());

    // operator-support holds tokens:read but not tokens:reveal: no button, and the vault says no.
    const support = pages.get('operator-support') as OperatorPage;
    await openView(support, `#/tokens/${tokenId}`, 'tokens');
    assert.equal(await support.page.locator('#reveal').count(), 0);

    // The security administrator's audit view lists the reveal, filtered by action.
    const security = pages.get('security-admin') as OperatorPage;
    await openView(security, '#/audit?action=token.reveal', 'audit');
    const rows = await security.page.locator('#view-audit table tbody tr').allTextContents();
    assert.equal(rows.length, 1, rows.join('\n'));
    assert.match(rows[0] ?? '', new RegExp(`token\\.reveal.*token:${tokenId}.*success`));
    await security.page.screenshot({
      path: path.join(screenshots, 'dashboard-audit-reveal.png'),
      fullPage: true,
    });
  });

  test('the vault answers the dashboard cross-origin on its routes only, and for its origin only', async () => {
    const apiOrigin = new URL(t.apiUrl).origin;
    const preflight = (origin: string, p: string, method: string) =>
      t.request('OPTIONS', `${t.vaultUrl}${p}`, {
        key: null,
        headers: {
          origin,
          'access-control-request-method': method,
          'access-control-request-headers': 'authorization',
        },
      });
    const allowed = await preflight(apiOrigin, `/v1/tokens/${tokenId}/reveal`, 'POST');
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get('access-control-allow-origin'), apiOrigin);
    assert.equal(allowed.headers.get('access-control-allow-credentials'), null, 'no credentials mode');
    for (const [origin, p, method] of [
      ['https://evil.example', `/v1/tokens/${tokenId}/reveal`, 'POST'],
      [apiOrigin, `/v1/tokens/${tokenId}`, 'DELETE'],
      [apiOrigin, '/v1/tokens', 'POST'],
      [apiOrigin, '/v1/forward', 'POST'],
    ] as const) {
      const refused = await preflight(origin, p, method);
      assert.equal(refused.headers.get('access-control-allow-origin'), null, `${origin} ${method} ${p}`);
    }
  });

  test('a session idle for 15 minutes ends: the next view sends the operator back to sign in', async () => {
    const viewer = pages.get('operator-viewer') as OperatorPage;
    const token = viewer.responses.length > 0 ? await sessionOf(viewer) : '';
    assert.ok(token, 'the viewer has a session');
    await t.adminSql`update identity.operator_sessions
      set last_seen_at = now() - interval '16 minutes' where sid = ${token}`;
    await viewer.page.evaluate(`location.hash = '#/payments?status=succeeded'`);
    await viewer.page.locator('#login').waitFor();
    assert.match((await viewer.page.locator('#login-error').textContent()) ?? '', /session has ended/);
    await viewer.page.screenshot({ path: path.join(screenshots, 'dashboard-session-ended.png') });
  });

  test('no card number in any page, in any dashboard API response, or in the console', async () => {
    const vaultOrigin = new URL(t.vaultUrl).origin;
    let responses = 0;
    for (const seen of allPages) {
      await bodiesRead(seen);
      for (const html of seen.html) assertNoCard(html, 'a dashboard page');
      for (const r of seen.responses) {
        responses += 1;
        if (r.unread) {
          assert.ok(r.method === 'OPTIONS' || r.status === 204, `the body of ${r.method} ${r.url} was read`);
          continue;
        }
        // The one expected exception: the reveal's answer, from the vault, to the reveal dialog.
        if (r.url.startsWith(`${vaultOrigin}/v1/tokens/${tokenId}/reveal`) && r.status === 200) continue;
        assertNoCard(r.body, `the response of ${r.url}`);
      }
      for (const line of seen.console) assertNoCard(line, 'the console');
    }
    assert.ok(responses > 50, `the responses were looked at (${responses})`);
  });

  /** The sid of the session a page's last signed-in request used, from the mfa answer it received. */
  async function sessionOf(seen: OperatorPage): Promise<string> {
    const mfa = seen.responses.filter((r) => r.url.endsWith('/v1/auth/mfa') && r.status === 200).at(-1);
    const token = (JSON.parse(mfa?.body ?? '{}') as { token?: string }).token ?? '';
    return String(decodeJwt(token)['sid'] ?? '');
  }
});
