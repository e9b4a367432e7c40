/**
 * The hosted fields page's Content-Security-Policy. Scripts, styles and requests only from the vault's
 * own origin (no third party, no inline code, no eval), no plugins, no forms posting anywhere, no
 * <base> rewriting, Trusted Types enforced for DOM sinks, framing only by the merchant page the vault
 * checked against the publishable key's allowed origins, and every violation reported to the vault.
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
    // Violations are reported to the vault (PCI DSS 11.6.1): report-to for the Reporting API, report-uri
    // for browsers without it (a browser with both uses report-to).
    `report-uri ${CSP_REPORT_PATH}`,
    `report-to ${CSP_REPORT_GROUP}`,
  ].join('; ');
}

export const CSP_REPORT_PATH = '/hosted/csp-reports';
export const CSP_REPORT_GROUP = 'cardhold-csp';
/** The Reporting-Endpoints header that names the group: relative, so it is the vault's own origin. */
export const reportingEndpoints = `${CSP_REPORT_GROUP}="${CSP_REPORT_PATH}"`;
