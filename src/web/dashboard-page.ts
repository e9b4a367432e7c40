import { escapeMarkup } from '../scan/reporters/escape.ts';
import type { WebAssets } from './web-assets.ts';

/**
 * The dashboard's HTML shell. It holds no data and no inline code: the script builds every view from the
 * api's (and the vault's) JSON answers. The only value in it is the vault's origin, which the api
 * knows from its configuration and the script needs to call the vault's token and key routes, and, when
 * sign-in through the identity provider is configured, the provider's endpoints and the client id.
 */
/** What the page needs to offer sign-in through the identity provider (authorization code with PKCE). */
export interface DashboardOidc {
  authorizationEndpoint: string;
  tokenEndpoint: string;
  clientId: string;
  scope: string;
  audience: string;
}

export function dashboardPage(
  assets: WebAssets,
  vaultOrigin: string | undefined,
  oidc?: DashboardOidc | undefined,
): string {
  const oidcMeta = oidc
    ? `\n<meta name="cardhold-oidc" content="${escapeMarkup(JSON.stringify(oidc))}">`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<meta name="cardhold-vault" content="${vaultOrigin ?? ''}">${oidcMeta}
<title>cardhold operator dashboard</title>
<link rel="stylesheet" href="${assets.dashboardStyle.path}" integrity="${assets.dashboardStyle.integrity}">
<script src="${assets.dashboard.path}" integrity="${assets.dashboard.integrity}" defer></script>
</head>
<body>
<header id="top"><h1>cardhold</h1><nav id="nav" aria-label="Views" hidden></nav><div id="who"></div></header>
<p id="notice" role="status" aria-live="polite"></p>
<main id="main" tabindex="-1"><noscript>The dashboard needs JavaScript.</noscript></main>
</body>
</html>
`;
}
