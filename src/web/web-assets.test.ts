import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { buildWebAssets, type WebAssets, webAssets } from './web-assets.ts';

/** The script inventory as docs/web.md publishes it: path → integrity. */
async function publishedInventory(): Promise<Map<string, string>> {
  const doc = await readFile(new URL('../../docs/web.md', import.meta.url), 'utf8');
  const rows = doc.matchAll(/^\| `(\/[^`]+)` \|[^|]+\|[^|]+\| `(sha384-[A-Za-z0-9+/=]{64})` \|$/gm);
  return new Map([...rows].map((row) => [row[1] as string, row[2] as string]));
}

// PCI DSS 6.4.3 and 11.6.1: every script of the payment pages is listed with its hash, and a change to
// any of them fails this test until the published inventory (and so merchants' integrity= pins) follows.
test('the built scripts are exactly the inventory docs/web.md publishes, hash for hash', async () => {
  const assets: WebAssets = await webAssets();
  const published = await publishedInventory();
  const served = new Map(Object.values(assets).map((a) => [a.path, a.integrity]));
  assert.deepEqual(
    [...published.keys()].sort(),
    [...served.keys()].sort(),
    'the inventory lists every asset, and nothing else',
  );
  for (const [path, integrity] of served) {
    assert.equal(
      published.get(path),
      integrity,
      `${path} changed: review it, then publish its new hash in docs/web.md`,
    );
  }
  const again = await buildWebAssets();
  for (const [name, asset] of Object.entries(again))
    assert.equal(asset.integrity, assets[name as keyof WebAssets].integrity, `${name} builds reproducibly`);
});

test('the payment page scripts name no other origin and evaluate no strings', async () => {
  const assets = await webAssets();
  for (const asset of [assets.cardFields, assets.sdk, assets.demoCheckout]) {
    const code = asset.body.toString('utf8');
    assert.doesNotMatch(code, /https?:\/\//, `${asset.path} loads nothing from a fixed origin`);
    assert.doesNotMatch(code, /\beval\(|new Function\(|innerHTML|document\.write/, asset.path);
  }
});
