import { startOidcSession } from './api.ts';

/**
 * Sign-in through the organisation's identity provider: OAuth 2.0 authorization code with PKCE (RFC
 * 7636), the dashboard a public client with no secret. The page sends the operator to the provider and
 * exchanges the code it brings back at the provider's token endpoint. The access token then works at
 * the api like any OIDC token: roles from the provider's groups, MFA from its amr.
 *
 * The state and the PKCE verifier must outlive the navigation to the provider and back, so they wait in
 * sessionStorage (this tab, this origin) and are removed as soon as the answer arrives. Neither is a
 * credential on its own; the access token itself stays in memory only, like an operator session.
 */
export interface OidcSettings {
  authorizationEndpoint: string;
  tokenEndpoint: string;
  clientId: string;
  scope: string;
  audience: string;
}

const PENDING = 'cardhold-oidc-pending';

export function oidcSettings(): OidcSettings | null {
  const content = document.querySelector<HTMLMetaElement>('meta[name="cardhold-oidc"]')?.content;
  if (!content) return null;
  try {
    return JSON.parse(content) as OidcSettings;
  } catch {
    return null;
  }
}

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');

const random = (length: number) => base64url(crypto.getRandomValues(new Uint8Array(length)));

/** Where the provider sends the operator back: this page, without query or fragment. */
const redirectUri = () => `${location.origin}${location.pathname}`;

/**
 * Sends the operator to the provider. `fresh` asks it to authenticate them again now (`max_age=0`,
 * OIDC Core 3.1.2.1), for actions that need multi-factor authentication at most 15 minutes old.
 */
export async function beginOidcSignIn(settings: OidcSettings, fresh = false): Promise<void> {
  const state = random(24);
  const verifier = random(32);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier }));
  const url = new URL(settings.authorizationEndpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', settings.clientId);
  url.searchParams.set('redirect_uri', redirectUri());
  url.searchParams.set('scope', settings.scope);
  url.searchParams.set('audience', settings.audience);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', base64url(new Uint8Array(digest)));
  url.searchParams.set('code_challenge_method', 'S256');
  if (fresh) url.searchParams.set('max_age', '0');
  location.assign(url.toString());
}

/** Whether this page load is the provider's answer (a code or an error in the query). */
export function isOidcAnswer(): boolean {
  const query = new URLSearchParams(location.search);
  return query.has('state') && (query.has('code') || query.has('error'));
}

/**
 * Finishes the sign-in the provider answered: checks the state, exchanges the code with the verifier,
 * and starts the session. The code leaves the address bar at once, whatever happens next.
 */
export async function completeOidcSignIn(settings: OidcSettings): Promise<void> {
  const query = new URLSearchParams(location.search);
  history.replaceState(null, '', `${location.pathname}${location.hash}`);
  const pending = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  const expected = pending ? (JSON.parse(pending) as { state: string; verifier: string }) : null;
  if (!expected || query.get('state') !== expected.state) {
    throw new Error('The answer from the identity provider does not belong to this sign-in; start again.');
  }
  const code = query.get('code');
  if (!code) throw new Error('The identity provider did not sign you in.');
  const response = await fetch(settings.tokenEndpoint, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri(),
      client_id: settings.clientId,
      code_verifier: expected.verifier,
    }),
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  });
  if (!response.ok) throw new Error('The identity provider refused the sign-in; start again.');
  const tokens = (await response.json()) as { access_token?: string; expires_in?: number };
  if (!tokens.access_token) throw new Error('The identity provider gave no access token.');
  await startOidcSession(tokens.access_token, tokens.expires_in ?? 300);
}
