import type { WebAssets } from './web-assets.ts';

/**
 * The hosted card fields' HTML. It holds no inline script or style and no value from the request: the
 * script reads the key and the parent origin from its own URL, which the vault checked before serving
 * this page. Labels, autocomplete tokens, input modes and live error regions make it usable with a
 * keyboard, a screen reader and a browser's saved cards.
 */
export function hostedFieldsPage(assets: WebAssets): string {
  const field = (
    id: string,
    label: string,
    attributes: string,
    options: { wide?: boolean; extra?: string } = {},
  ) => `
  <div class="field${options.wide ? ' wide' : ''}">
    <label for="${id}">${label}</label>
    <div class="input-row">
      <input id="${id}" ${attributes} aria-required="true" aria-invalid="false" aria-describedby="${id}-error"
        autocorrect="off" spellcheck="false">${options.extra ?? ''}
    </div>
    <p id="${id}-error" class="error" aria-live="polite"></p>
  </div>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Card details</title>
<link rel="stylesheet" href="${assets.cardFieldsStyle.path}" integrity="${assets.cardFieldsStyle.integrity}">
<script src="${assets.cardFields.path}" integrity="${assets.cardFields.integrity}" defer></script>
</head>
<body>
<form id="card-form" novalidate aria-label="Card details">
${field(
  'number',
  'Card number',
  'name="cardnumber" type="text" inputmode="numeric" autocomplete="cc-number" maxlength="23" placeholder="1234 1234 1234 1234"',
  { wide: true, extra: '<span id="brand" class="brand" aria-live="polite"></span>' },
)}
${field('expiry', 'Expiry date (MM / YY)', 'name="exp-date" type="text" inputmode="numeric" autocomplete="cc-exp" maxlength="7" placeholder="MM / YY"')}
${field('cvc', 'Security code', 'name="cvc" type="text" inputmode="numeric" autocomplete="cc-csc" maxlength="4" placeholder="CVC"')}
${field('name', 'Name on card', 'name="ccname" type="text" autocomplete="cc-name" maxlength="100"', { wide: true })}
  <p id="form-status" class="status" role="status"></p>
</form>
</body>
</html>
`;
}
