/**
 * The hosted fields page's Content-Security-Policy. Scripts, styles and requests only from the vault's
 * own origin (no third party, no inline code, no eval), no plugins, no forms posting anywhere, no
 * <base> rewriting, Trusted Types enforced for DOM sinks, and framing only by the merchant page the
 * vault checked against the publishable key's allowed origins.
 */
export function hostedFieldsCsp(frameAncestor: string): string {
  // An origin from URL.origin holds no space, quote or semicolon; checked again so a bad one fails closed.
  if (!/^https?:\/\/[A-Za-z0-9.:[\]-]+$/.test(frameAncestor)) {
    throw new Error('frame ancestor is not a serialized origin');
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
    `frame-ancestors ${frameAncestor}`,
  ].join('; ');
}
