import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * The browser scripts and the stylesheet of the hosted fields and the demo checkout, built from
 * src/web/client with esbuild when the process starts (in memory, once), so `npm install` and
 * `npm start` stay the only two commands. Builds are deterministic: the same sources and esbuild
 * version give the same bytes and so the same Subresource Integrity hashes, which docs/web.md publishes
 * and a test compares (PCI DSS 6.4.3 and 11.6.1: the payment page's scripts are inventoried and a change
 * to any of them is detected).
 */
export interface WebAsset {
  /** The path it is served at. */
  path: string;
  body: Buffer;
  contentType: string;
  /** `sha384-…`, for the integrity attribute. */
  integrity: string;
}

export interface WebAssets {
  /** The hosted fields' script, loaded by the iframe page from the vault's origin. */
  cardFields: WebAsset;
  /** The hosted fields' stylesheet. */
  cardFieldsStyle: WebAsset;
  /** cardhold.js, the merchant-side SDK (global `Cardhold`). */
  sdk: WebAsset;
  /** The demo merchant's own checkout script (development only). */
  demoCheckout: WebAsset;
  /** The operator dashboard's script, served by the api (issue 10, point 3). */
  dashboard: WebAsset;
  /** The operator dashboard's stylesheet. */
  dashboardStyle: WebAsset;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const client = (file: string) => path.join('src/web/client', file);

export const integrityOf = (body: Buffer): string =>
  `sha384-${createHash('sha384').update(body).digest('base64')}`;

const asset = (servedAt: string, body: Buffer, contentType: string): WebAsset => ({
  path: servedAt,
  body,
  contentType,
  integrity: integrityOf(body),
});

async function bundle(entry: string, globalName?: string): Promise<Buffer> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    ...(globalName ? { globalName } : {}),
    platform: 'browser',
    target: ['es2022'],
    charset: 'utf8',
    legalComments: 'none',
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced nothing for ${entry}`);
  return Buffer.from(file.contents);
}

let built: Promise<WebAssets> | undefined;

/** Built once per process; a failed build is retried on the next call. */
export function webAssets(): Promise<WebAssets> {
  built ??= buildWebAssets().catch((error: unknown) => {
    built = undefined;
    throw error;
  });
  return built;
}

/** A fresh build, not the memoized one: the inventory test builds twice to prove the output is stable. */
export async function buildWebAssets(): Promise<WebAssets> {
  const [fields, sdk, demo, css, dashboard, dashboardCss] = await Promise.all([
    bundle(client('card-fields.ts')),
    bundle(client('cardhold-sdk.ts'), 'Cardhold'),
    bundle(client('demo-checkout.ts')),
    readFile(path.join(root, client('card-fields.css'))),
    bundle(client('dashboard/main.ts')),
    readFile(path.join(root, client('dashboard/dashboard.css'))),
  ]);
  const js = 'text/javascript; charset=utf-8';
  return {
    cardFields: asset('/hosted/card-fields.js', fields, js),
    cardFieldsStyle: asset('/hosted/card-fields.css', css, 'text/css; charset=utf-8'),
    sdk: asset('/sdk/cardhold.js', sdk, js),
    demoCheckout: asset('/checkout.js', demo, js),
    dashboard: asset('/dashboard/app.js', dashboard, js),
    dashboardStyle: asset('/dashboard/app.css', dashboardCss, 'text/css; charset=utf-8'),
  };
}
