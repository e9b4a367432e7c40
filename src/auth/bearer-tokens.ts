import type { FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import type { Origin } from '../audit/events.ts';
import { originOf } from './authenticate.ts';
import type { Principal } from './principal.ts';

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Judges cardhold's own operator session tokens: `Operators` on the api, `SessionVerifier` on the
 * vault. Throws (`session_invalid`) for a token it refuses.
 */
export interface OperatorSessions {
  authenticate(token: string, origin: Origin): Promise<Principal>;
}

/**
 * Routes a signed bearer token to the one verifier that can judge it: cardhold's own operator sessions
 * (issuer `cardhold`) or the configured OIDC provider. The unverified issuer only chooses the verifier;
 * the verifier then checks everything, the issuer included. Anything else is not a token of ours.
 */
export function bearerTokenAuthenticator(sources: {
  operators?: OperatorSessions | undefined;
  oidc?: ((token: string) => Promise<Principal | undefined>) | undefined;
}): ((token: string, request: FastifyRequest) => Promise<Principal | undefined>) | undefined {
  if (!sources.operators && !sources.oidc) return undefined;
  return async (token, request) => {
    if (!JWT_SHAPE.test(token)) return undefined;
    let issuer: string | undefined;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      return undefined;
    }
    if (issuer === 'cardhold' && sources.operators)
      return sources.operators.authenticate(token, originOf(request));
    return sources.oidc ? sources.oidc(token) : undefined;
  };
}
