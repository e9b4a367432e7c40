import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { launchChromium, skipWithoutChromium } from '../../../test/browser.ts';
import { outputDir } from '../../../test/global-setup.ts';
import { defaultScanConfig } from '../config.ts';
import { ScanInputs } from '../inputs/scan-inputs.ts';
import { buildReport } from '../scan.ts';
import { renderHtml } from './html.ts';

// In CI the browser is installed by .ci/run: its absence is a failure there, a skip on a laptop without it.
test('the HTML report opens in Chromium and shows findings by PCI requirement and guidance area', {
  skip: skipWithoutChromium,
}, async () => {
  const inputs = new ScanInputs();
  inputs.addYaml(
    'apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: app, image: "nginx:latest", securityContext: {privileged: true}, env: [{name: NOTE, value: "<script>alert(1)</script>"}]}]\n',
    'pod.yaml',
  );
  const html = renderHtml(buildReport(inputs, defaultScanConfig, []));
  const file = path.join(await mkdtemp(path.join(outputDir, 'html-')), 'report.html');
  await writeFile(file, html);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(pathToFileURL(file).href);
    assert.equal(await page.locator('h1').textContent(), 'cardhold scan report');
    assert.equal(await page.locator('#result').textContent(), 'FAIL');
    assert.match((await page.locator('#pci h2').textContent()) ?? '', /PCI DSS v4\.0\.1 requirement/);
    assert.equal(await page.locator('#guidance h3').count(), 16, 'one group per guidance area');
    const row = page.locator('#pci tr[data-control="2.2.1"]');
    assert.match((await row.textContent()) ?? '', /Fails/);
    assert.match(
      (await page.locator('#guidance tr[data-control="9.2"]').textContent()) ?? '',
      /Not applicable/,
    );
    assert.match((await page.locator('#findings').textContent()) ?? '', /pss\.baseline\.privileged/);
    assert.match((await page.locator('body').textContent()) ?? '', /not a statement of compliance/);
    assert.deepEqual(requests, [pathToFileURL(file).href], 'self-contained: no other request');
  } finally {
    await browser.close();
  }
});
