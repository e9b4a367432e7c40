import { createHash, timingSafeEqual } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditTrail } from '../audit/audit-trail.ts';
import type { AccessContext, AuditAction, Origin } from '../audit/events.ts';
import { CardholdError, isCardholdError } from '../shared/errors.ts';
import type { Secret } from '../shared/secret.ts';
import { merchantIdPattern } from '../vault/identifiers.ts';
import { ApiKeyVerifier } from './api-keys.ts';
import type { ClientTrust } from './client-trust.ts';
import {
  cdePermissions,
  type Permission,
  platformPermissions,
  type RoleName,
  rolePermissions,
} from './permissions.ts';
import { actorOf, isPerson, type Principal } from './principal.ts';
import { publishableOriginAllowed } from './publishable-origin.ts';

/**
 * What a route requires: one permission; `session`, any signed-in operator (their own password, MFA and
 * sign-out); `person`, any signed-in person, operator or OIDC (who am I); or nothing at all (health,
 * OpenAPI, public keys, sign-in).
 */
export type RouteAccess = Permission | 'session' | 'person' | 'public';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Every route declares this; the server refuses to register a route without it. */
    access?: RouteAccess;
    /** A rate limit shared by the routes of one group, per credential (src/http/create-server.ts). */
    limit?: { group: string; perMinute: number };
  }
}

/** The header a platform-wide principal (staff, services) names the merchant it acts for with. */
export const MERCHANT_HEADER = 'cardhold-merchant';
const MERCHANT_ID = new RegExp(merchantIdPattern);

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([!-~]{1,16384})$/.exec(header) : null;
  return match?.[1];
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

export interface AuthorizerOptions {
  /** Records refusals (PCI DSS 10.2.1.4); the test acquirer has none. */
  trail?: AuditTrail | undefined;
  /** Merchant keys (sk_…, pk_…), on the roles that accept them. */
  apiKeys?: ApiKeyVerifier | undefined;
  /** The bootstrap administrator token, on the api role, until operator accounts replace it. */
  adminToken?: Secret<string> | undefined;
  /**
   * Service identities accepted from client certificates issued by the configured CA: the URI SAN
   * (`spiffe://cardhold/api`) and the role it acts as.
   */
  services?: Readonly<Record<string, RoleName>> | undefined;
  /**
   * The CA bundle as reloaded (CARDHOLD_TLS_DIR): a connection whose certificate no longer chains to it,
   * or has expired, is refused and closed, however long ago its handshake passed.
   */
  clientTrust?: ClientTrust | undefined;
  /** Signed bearer tokens (operator sessions, OIDC access tokens); undefined when not one of ours. */
  bearerTokens?: ((token: string, request: FastifyRequest) => Promise<Principal | undefined>) | undefined;
}

/**
 * Authentication and authorization for every route of a server, deny by default (PCI DSS 7.2, 8.2):
 * the route's declared permission must be held by the caller; people need MFA for card data, keys and
 * the audit trail; a publishable key works only from its allowed origins. Runs on `onRequest`, before
 * a body is parsed. Every refusal is recorded, with a refused credential only as a keyed hash.
 */
export class Authorizer {
  readonly #options: AuthorizerOptions;
  readonly #adminDigest: Buffer | undefined;
  /** Per connection: the service, the trust epoch it was checked under, and when its certificate ends. */
  readonly #servicePrincipals = new WeakMap<
    TLSSocket,
    { principal: Principal; epoch: number; notAfter: number }
  >();

  constructor(options: AuthorizerOptions) {
    this.#options = options;
    this.#adminDigest = options.adminToken
      ? createHash('sha256').update(options.adminToken.expose()).digest()
      : undefined;
  }

  readonly hook = async (request: FastifyRequest, reply?: FastifyReply): Promise<void> => {
    request.principal = null;
    const access = request.routeOptions.config?.access;
    if (access === 'public') return;
    if (access === undefined) {
      // Not-found and other framework routes: nothing to authorize, nothing served.
      if (request.routeOptions.url === undefined) return;
      throw new CardholdError('forbidden', { detail: 'This route declares no permission' });
    }
    const presented = bearer(request);
    let principal: Principal;
    try {
      principal = await this.#authenticate(presented, request, reply);
    } catch (error) {
      if (isCardholdError(error) && error.code === 'unauthenticated') {
        // A refused client certificate (PCI DSS 10.2.1.4) is named by its fingerprint's keyed hash.
        const certificate = presented ? undefined : peerCertificate(request);
        await this.#refused(
          request,
          'auth.failure',
          null,
          certificate ? 'bad_client_certificate' : error.code,
          access,
          presented ?? (certificate ? `cert:${certificate.fingerprint256}` : undefined),
        );
      }
      throw error;
    }
    const refuse = async (reason: string, detail: string) => {
      await this.#refused(request, 'access.denied', principal, reason, access);
      throw new CardholdError('forbidden', { detail });
    };
    if (access === 'session') {
      if (principal.kind !== 'operator') await refuse('forbidden', 'This route is for signed-in operators');
      request.principal = principal;
      return;
    }
    if (access === 'person') {
      if (!isPerson(principal)) await refuse('forbidden', 'This route is for signed-in people');
      request.principal = principal;
      return;
    }
    if (!principal.permissions.has(access))
      await refuse('forbidden', `This credential does not hold ${access}`);
    // Defence in depth behind the credential issuers, which refuse such a mix: routes of platform
    // administration do not narrow what they show or change to one merchant.
    if (principal.merchantId !== null && platformPermissions.has(access)) {
      await refuse('forbidden', 'A credential confined to one merchant cannot administer the platform');
    }
    if (principal.allowedOrigins && !publishableOriginAllowed(request, principal.allowedOrigins)) {
      await refuse('origin_not_allowed', 'A publishable key works only from its allowed origins');
    }
    if (isPerson(principal) && cdePermissions.has(access) && !principal.mfaAt) {
      await this.#refused(request, 'access.denied', principal, 'mfa_required', access);
      throw new CardholdError('mfa_required');
    }
    request.principal = principal;
  };

  async #authenticate(
    presented: string | undefined,
    request: FastifyRequest,
    reply: FastifyReply | undefined,
  ): Promise<Principal> {
    if (!presented) return this.#service(request, reply);
    const { apiKeys, bearerTokens } = this.#options;
    if (apiKeys && ApiKeyVerifier.looksLikeKey(presented)) return apiKeys.verify(presented);
    if (this.#adminDigest) {
      const digest = createHash('sha256').update(presented).digest();
      if (timingSafeEqual(digest, this.#adminDigest)) return adminPrincipal;
    }
    const fromToken = bearerTokens ? await bearerTokens(presented, request) : undefined;
    if (fromToken) return fromToken;
    throw new CardholdError('unauthenticated');
  }

  /**
   * A service calling with its certificate and no bearer credential (PCI DSS 8.6; the container guidance's
   * workload identities). A certificate that does not chain to the CA, or names no known service, is
   * refused like a bad password.
   */
  #service(request: FastifyRequest, reply: FastifyReply | undefined): Principal {
    const socket = request.raw.socket as TLSSocket;
    const trust = this.#options.clientTrust;
    // A connection's certificate cannot change, and reading it builds a new object each time: services
    // keep their connections alive, so the identity is worked out once per connection, and checked
    // again only when the CA bundle changes or the certificate's time is up.
    const known = this.#servicePrincipals.get(socket);
    const epoch = trust?.epoch ?? 0;
    if (known && known.epoch === epoch && Date.now() <= known.notAfter) return known.principal;
    // A refused certificate would be refused the same way on every request of its connection, whatever
    // the bundle becomes: the connection is closed, and the client's next one is checked afresh.
    const refuse = (error: CardholdError): never => {
      this.#servicePrincipals.delete(socket);
      if (reply) reply.raw.shouldKeepAlive = false;
      throw error;
    };
    // Worked out again from the certificate, never carried over from an earlier check.
    let principal: Principal;
    try {
      principal = this.#serviceOf(request, socket);
    } catch (error) {
      return refuse(isCardholdError(error) ? error : new CardholdError('unauthenticated'));
    }
    let notAfter = Date.parse(socket.getPeerX509Certificate?.()?.validTo ?? '');
    if (trust) {
      const until = trust.trustedUntil(socket);
      if (until === undefined) {
        return refuse(
          new CardholdError('unauthenticated', {
            detail: 'The client certificate is no longer trusted (the CA bundle changed, or it expired)',
          }),
        );
      }
      notAfter = until;
    }
    this.#servicePrincipals.set(socket, {
      principal,
      epoch,
      notAfter: Number.isNaN(notAfter) ? Number.POSITIVE_INFINITY : notAfter,
    });
    return principal;
  }

  #serviceOf(request: FastifyRequest, socket: TLSSocket): Principal {
    const certificate = peerCertificate(request);
    if (!certificate) throw new CardholdError('unauthenticated');
    if (!socket.authorized) {
      throw new CardholdError('unauthenticated', {
        detail: 'The client certificate is not from the trusted CA',
      });
    }
    const uris = (certificate.subjectaltname ?? '')
      .split(', ')
      .filter((name) => name.startsWith('URI:'))
      .map((name) => name.slice(4));
    const services = this.#options.services ?? {};
    const identity = uris.find((uri) => Object.hasOwn(services, uri));
    const role = identity ? services[identity] : undefined;
    if (!identity || !role) {
      throw new CardholdError('unauthenticated', {
        detail: 'The client certificate names no service allowed here',
      });
    }
    return {
      kind: 'service',
      id: identity,
      merchantId: null,
      roles: [role],
      permissions: new Set(rolePermissions[role]),
      mfaAt: null,
    };
  }

  /** Best-effort: the request is refused whether or not the record commits. */
  async #refused(
    request: FastifyRequest,
    action: AuditAction,
    principal: Principal | null,
    reason: string,
    access: RouteAccess,
    presented?: string,
  ): Promise<void> {
    const trail = this.#options.trail;
    if (!trail) return;
    const actor = principal
      ? actorOf(principal)
      : { type: 'anonymous' as const, id: presented ? trail.keyedHash(presented) : 'no-credential' };
    await trail
      .record({
        action,
        actor,
        resource: { type: 'route', id: request.routeOptions.url ?? 'unmatched' },
        merchantId: principal?.merchantId ?? null,
        outcome: 'failure',
        reason,
        origin: originOf(request),
        details: { permission: access },
      })
      .catch(() => undefined);
  }
}

function peerCertificate(request: FastifyRequest): PeerCertificate | undefined {
  const socket = request.raw.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const certificate = socket.getPeerCertificate();
  return certificate && Object.keys(certificate).length > 0 ? certificate : undefined;
}

/** The bootstrap administrator: security-admin's permissions, one shared token (see docs/identity.md). */
const adminPrincipal: Principal = {
  kind: 'admin_token',
  id: 'admin-token',
  merchantId: null,
  roles: ['security-admin'],
  permissions: new Set(rolePermissions['security-admin']),
  mfaAt: null,
};

/**
 * The authenticated caller, the merchant it acts for and the request's origin; every card-data query is
 * scoped by that merchant. A merchant's own credentials act for it alone; a platform-wide principal
 * names the merchant in the `cardhold-merchant` header.
 */
export function accessOf(request: FastifyRequest): AccessContext {
  const principal = request.principal;
  if (!principal) throw new CardholdError('unauthenticated');
  let merchantId = principal.merchantId;
  if (merchantId === null) {
    const named = request.headers[MERCHANT_HEADER];
    if (typeof named !== 'string' || !MERCHANT_ID.test(named)) {
      throw new CardholdError('request_invalid', {
        field: MERCHANT_HEADER,
        detail: `Name the merchant in the ${MERCHANT_HEADER} header`,
      });
    }
    merchantId = named;
  }
  return { merchantId, actor: actorOf(principal), origin: originOf(request) };
}

/** The caller of an administrative route, as an audit actor. */
export function adminAccess(request: FastifyRequest): Omit<AccessContext, 'merchantId'> {
  const principal = request.principal;
  if (!principal) throw new CardholdError('unauthenticated');
  return { actor: actorOf(principal), origin: originOf(request) };
}

/**
 * For administrative routes about one merchant: a principal confined to another merchant gets exactly
 * the answer a missing merchant gets.
 */
export function assertMerchantVisible(request: FastifyRequest, merchantId: string): void {
  const own = request.principal?.merchantId;
  if (own && own !== merchantId) throw new CardholdError('merchant_not_found');
}
