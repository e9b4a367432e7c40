import { escapeMarkup } from '../scan/reporters/escape.ts';
import type { WebAssets } from './web-assets.ts';

/**
 * The demo merchant's checkout page: a merchant's page as docs/web.md tells merchants to write it. It
 * loads cardhold.js from the vault with Subresource Integrity and its own script from itself, holds no
 * inline code, and passes settings in meta tags. The card fields are the vault's iframe.
 */
export function demoCheckoutPage(options: {
  assets: WebAssets;
  vaultUrl: string;
  publishableKey: string;
}): string {
  const { assets, vaultUrl, publishableKey } = options;
  const sdkUrl = new URL(assets.sdk.path, vaultUrl).href;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo shop: checkout</title>
<meta name="cardhold-vault-url" content="${escapeMarkup(vaultUrl)}">
<meta name="cardhold-publishable-key" content="${escapeMarkup(publishableKey)}">
<link rel="stylesheet" href="/checkout.css">
<script src="${escapeMarkup(sdkUrl)}" integrity="${assets.sdk.integrity}" crossorigin="anonymous" defer></script>
<script src="${assets.demoCheckout.path}" integrity="${assets.demoCheckout.integrity}" defer></script>
</head>
<body>
<main>
  <h1>Demo shop</h1>
  <p class="note">A merchant page on its own origin (development only). The card fields below come from
  the cardhold vault in an iframe: this page never sees the card number.</p>
  <section aria-labelledby="order-title">
    <h2 id="order-title">Your order</h2>
    <p>One cardhold mug: <strong>$25.00</strong></p>
  </section>
  <section aria-labelledby="pay-title">
    <h2 id="pay-title">Pay by card</h2>
    <div id="card-fields"></div>
    <button id="pay" type="button" disabled>Pay $25.00</button>
    <p id="result" role="status" aria-live="polite"></p>
  </section>
  <p class="note">Test cards: docs/test-acquirer.md. Any future expiry, any CVC.</p>
</main>
</body>
</html>
`;
}

export const demoCheckoutStyle = `body { font-family: system-ui, sans-serif; background: #f5f5f7; color: #1a1a2e; margin: 0; }
main { max-width: 480px; margin: 32px auto; background: #fff; padding: 24px 28px; border-radius: 10px; }
h1 { margin-top: 0; }
.note { color: #52525b; font-size: 0.875rem; }
#pay { margin-top: 8px; width: 100%; padding: 12px; font-size: 1rem; border: 0; border-radius: 6px;
  background: #4f46e5; color: #fff; cursor: pointer; }
#pay:disabled { background: #a5a3d9; cursor: default; }
#pay:focus-visible { outline: 3px solid #1a1a2e; outline-offset: 2px; }
#result[data-outcome='succeeded'] { color: #166534; font-weight: 600; }
#result[data-outcome='failed'], #result[data-outcome='error'] { color: #b42318; font-weight: 600; }
`;
