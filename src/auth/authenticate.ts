import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { CardholdError } from '../shared/errors.ts';
import type { Secret } from '../shared/secret.ts';
import type { ApiKeyPrincipal, ApiKeyVerifier } from './api-keys.ts';
import type { Scope } from './scopes.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: ApiKeyPrincipal | null;
  }
}

function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([!-~]{1,512})$/.exec(header) : null;
  if (!match?.[1]) throw new CardholdError('unauthenticated');
  return match[1];
}

/** preHandler for merchant routes: a valid secret key holding `scope`; anything else is refused. */
export function requireScope(verifier: ApiKeyVerifier, scope: Scope) {
  return async (request: FastifyRequest): Promise<void> => {
    const principal = await verifier.verify(bearer(request));
    if (!principal.scopes.has(scope)) {
      throw new CardholdError('forbidden', { detail: `This key does not hold the ${scope} scope` });
    }
    request.principal = principal;
  };
}

/** The merchant the authenticated key belongs to; every vault query is scoped by it. */
export function merchantOf(request: FastifyRequest): string {
  if (!request.principal) throw new CardholdError('unauthenticated');
  return request.principal.merchantId;
}

/**
 * preHandler for administrative routes until operator accounts exist: a bearer token compared in
 * constant time against the configured one. With no token configured the routes refuse everyone.
 */
export function requireAdmin(token: Secret<string> | undefined) {
  const expected = token ? createHash('sha256').update(token.expose()).digest() : undefined;
  return async (request: FastifyRequest): Promise<void> => {
    const presented = createHash('sha256').update(bearer(request)).digest();
    if (!expected || !timingSafeEqual(presented, expected)) throw new CardholdError('unauthenticated');
  };
}
