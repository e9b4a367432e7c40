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

  before(async () => {
    await mkdir(screenshots, { recursive: true });
    platform = await startTestPlatform(backends().at(-1) ?? 'embedded', 'web-checkout', {
      roles: ['vault', 'api', 'acquirer'],
      demoCheckout: true,
    });
    demoUrl = platform.platform.demoCheckoutUrl ?? '';
    assert.match(demoUrl, /^https:\/\//);
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
});

export { PROTOCOL };
