import type { Actor } from '../audit/events.ts';
import type { Permission, RoleName } from './permissions.ts';

/**
 * Whoever a request authenticated as. Every kind of credential (merchant key, operator session, OIDC
 * token, service certificate, the bootstrap admin token) becomes one of these, so that authorization
 * and tenant scoping are decided in one place.
 */
export interface Principal {
  kind: 'merchant_key' | 'admin_token' | 'operator' | 'oidc' | 'service';
  /** The key id, operator id, OIDC subject or service identity. */
  id: string;
  /** The one merchant this principal is confined to, or null for platform-wide staff and services. */
  merchantId: string | null;
  roles: readonly RoleName[];
  permissions: ReadonlySet<Permission>;
  /** People only: whether this session passed multi-factor authentication, and when. */
  mfaAt: Date | null;
  /** Publishable keys: the browser origins they may be used from. */
  allowedOrigins?: readonly string[];
}

export function actorOf(principal: Principal): Actor {
  switch (principal.kind) {
    case 'merchant_key':
      return { type: 'merchant_key', id: principal.id };
    case 'admin_token':
      return { type: 'admin_token', id: principal.id };
    case 'service':
      return { type: 'service', id: principal.id };
    default:
      return { type: 'user', id: principal.id };
  }
}

export const isPerson = (principal: Principal) => principal.kind === 'operator' || principal.kind === 'oidc';
