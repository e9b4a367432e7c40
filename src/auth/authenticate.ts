import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { AuditTrail } from '../audit/audit-trail.ts';
import type { AccessContext, Origin } from '../audit/events.ts';
import { CardholdError, isCardholdError } from '../shared/errors.ts';
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

/** Where a request came from, as audit records state it (PCI DSS 10.2.2.5). */
export function originOf(request: FastifyRequest): Origin {
  const agent = request.headers['user-agent'];
  return {
    origin: request.ip,
    userAgent: typeof agent === 'string' ? agent : null,
    requestId: String(request.id),
  };
}

/**
 * preHandler for merchant routes: a valid secret key holding `scope`; anything else is refused and
 * recorded in the audit trail (PCI DSS 10.2.1.4). A refused credential appears there only as a keyed
 * hash.
 */
export function requireScope(verifier: ApiKeyVerifier, trail: AuditTrail, scope: Scope) {
  return async (request: FastifyRequest): Promise<void> => {
    const origin = originOf(request);
    let presented: string | undefined;
    try {
      presented = bearer(request);
      const principal = await verifier.verify(presented);
      if (!principal.scopes.has(scope)) {
        await recordRefusal(trail, {
          action: 'access.denied',
          actor: { type: 'merchant_key', id: principal.keyId },
          merchantId: principal.merchantId,
          reason: 'forbidden',
          scope,
          origin,
          route: request.routeOptions.url,
        });
        throw new CardholdError('forbidden', { detail: `This key does not hold the ${scope} scope` });
      }
      request.principal = principal;
    } catch (error) {
      if (isCardholdError(error) && error.code === 'unauthenticated') {
        await recordRefusal(trail, {
          action: 'auth.failure',
          actor: { type: 'anonymous', id: presented ? trail.keyedHash(presented) : 'no-credential' },
          merchantId: null,
          reason: 'unauthenticated',
          scope,
          origin,
          route: request.routeOptions.url,
        });
      }
      throw error;
    }
  };
}

/** A refusal is recorded best-effort: the request is refused whether or not the record commits. */
async function recordRefusal(
  trail: AuditTrail,
  refusal: {
    action: 'auth.failure' | 'access.denied';
    actor: AccessContext['actor'];
    merchantId: string | null;
    reason: string;
    scope: Scope;
    origin: Origin;
    route: string | undefined;
  },
): Promise<void> {
  await trail
    .record({
      action: refusal.action,
      actor: refusal.actor,
      resource: { type: 'route', id: refusal.route ?? 'unmatched' },
      merchantId: refusal.merchantId,
      outcome: 'failure',
      reason: refusal.reason,
      origin: refusal.origin,
      details: { scope: refusal.scope },
    })
    .catch(() => undefined);
}

/** The authenticated merchant key, its merchant and the request's origin; every vault query is scoped by it. */
export function accessOf(request: FastifyRequest): AccessContext {
  if (!request.principal) throw new CardholdError('unauthenticated');
  return {
    merchantId: request.principal.merchantId,
    actor: { type: 'merchant_key', id: request.principal.keyId },
    origin: originOf(request),
  };
}

/**
 * preHandler for administrative routes until operator accounts exist: a bearer token compared in
 * constant time against the configured one. With no token configured the routes refuse everyone.
 */
export function requireAdmin(token: Secret<string> | undefined, trail: AuditTrail) {
  const expected = token ? createHash('sha256').update(token.expose()).digest() : undefined;
  return async (request: FastifyRequest): Promise<void> => {
    let presented: string | undefined;
    try {
      presented = bearer(request);
      const digest = createHash('sha256').update(presented).digest();
      if (!expected || !timingSafeEqual(digest, expected)) throw new CardholdError('unauthenticated');
    } catch (error) {
      await trail
        .record({
          action: 'auth.failure',
          actor: { type: 'anonymous', id: presented ? trail.keyedHash(presented) : 'no-credential' },
          resource: { type: 'route', id: request.routeOptions.url ?? 'unmatched' },
          merchantId: null,
          outcome: 'failure',
          reason: 'unauthenticated',
          origin: originOf(request),
          details: { credential: 'admin_token' },
        })
        .catch(() => undefined);
      throw error;
    }
  };
}

/** The administrator as an audit actor. One shared token until operator accounts exist (issue 4). */
export function adminAccess(request: FastifyRequest): Omit<AccessContext, 'merchantId'> {
  return { actor: { type: 'admin_token', id: 'admin-token' }, origin: originOf(request) };
}
