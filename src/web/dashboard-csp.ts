/**
 * The operator dashboard's Content-Security-Policy: its own script and stylesheet only (no inline code,
 * no eval, no third party), requests only to the api (itself), the vault (token views, reveal, keys) and,
 * with OIDC sign-in, the identity provider's token endpoint,
 * never framed (clickjacking), no forms posting anywhere, no <base>, and Trusted Types with no policy at
 * all, so no string can reach an HTML or script sink: the app builds the DOM with textContent only.
 */
export function dashboardCsp(vaultOrigin: string | undefined, identityProviderOrigin?: string): string {
  // An origin from URL.origin holds no space, quote or semicolon; checked again so a bad one fails closed.
  if (vaultOrigin !== undefined && !/^https:\/\/[A-Za-z0-9.:[\]-]+$/.test(vaultOrigin)) {
    throw new Error('the vault origin is not a serialized https origin');
  }
  // The identity provider's token endpoint, where sign-in through OIDC exchanges its code (https, or
  // http on loopback as the configuration allows).
  if (
    identityProviderOrigin !== undefined &&
    !/^(https:\/\/[A-Za-z0-9.:[\]-]+|http:\/\/(127\.0\.0\.1|\[::1\])(:\d+)?)$/.test(identityProviderOrigin)
  ) {
    throw new Error('the identity provider origin is not a serialized https (or loopback) origin');
  }
  const connect = [vaultOrigin, identityProviderOrigin].filter((o): o is string => o !== undefined);
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `connect-src 'self'${connect.map((o) => ` ${o}`).join('')}`,
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; ');
}
