import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, skipWithoutChromium } from '../../test/browser.ts';
import { startTestPlatform, type TestPlatform } from '../../test/harness.ts';

/**
 * The API documentation (Swagger UI) is served on the vault too, the card fields' origin: it must run
 * under a strict content security policy and never be framed, and still work.
 */
describe('the API docs under a strict policy', { skip: skipWithoutChromium }, () => {
  let t: TestPlatform;
  let browser: Browser;
  before(async () => {
    t = await startTestPlatform('external', 'api-docs');
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('/docs on the vault: a policy with no framing, and the operations still render', async () => {
    const head = await t.request('GET', `${t.vaultUrl}/docs/static/index.html`, { key: null });
    assert.equal(head.status, 200);
    const csp = head.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.equal(head.headers.get('x-frame-options'), 'DENY');
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    await page.goto(`${t.vaultUrl}/docs`);
    await page.waitForSelector('.opblock', { timeout: 15_000 });
    assert.ok((await page.locator('.opblock').count()) > 0, 'the operations are listed');
    assert.deepEqual(violations, [], 'nothing the page needs is blocked');
    await context.close();
  });
});
