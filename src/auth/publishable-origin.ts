import type { FastifyRequest } from 'fastify';

/** The header the hosted card fields name the merchant page that framed them with. */
export const EMBEDDING_ORIGIN_HEADER = 'cardhold-embedding-origin';

/**
 * Whether a publishable key may be used from where this request comes from: a page at one of the key's
 * allowed origins, or the vault's hosted card fields (the request's own origin) framed by one of them.
 * The vault serves the hosted fields only to, and only framed by, an allowed origin (frame-ancestors),
 * and a browser sets `Origin` itself, so a page elsewhere can do neither. Like every Origin check, it
 * binds browsers, not other clients: a publishable key can only tokenize, into its own merchant.
 */
export function publishableOriginAllowed(request: FastifyRequest, allowed: readonly string[]): boolean {
  const origin = request.headers.origin;
  if (typeof origin !== 'string') return false;
  if (allowed.includes(origin)) return true;
  const embedding = request.headers[EMBEDDING_ORIGIN_HEADER];
  const site = request.headers['sec-fetch-site'];
  return (
    typeof embedding === 'string' &&
    allowed.includes(embedding) &&
    origin === `https://${request.headers.host}` &&
    (site === undefined || site === 'same-origin')
  );
}
