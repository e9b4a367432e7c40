/**
 * Every permission cardhold knows, and the roles that bundle them (PCI DSS 7.2). Routes declare the one
 * permission they need; anything not granted is denied. Permissions for capabilities that do not exist
 * yet are listed so that roles are stable as routes arrive.
 */
export const permissions = [
  'tokens:create',
  'tokens:read',
  'tokens:reveal',
  'tokens:delete',
  'cvv:use',
  'forward:use',
  'payments:write',
  'payments:read',
  'refunds:write',
  'webhooks:manage',
  'keys:admin',
  'audit:read',
  'users:admin',
  'merchants:admin',
  'merchants:read',
  // The test acquirer's API: only the vault (its forward proxy) sends it card data.
  'acquirer:transact',
] as const;

export type Permission = (typeof permissions)[number];

/**
 * Access to card data, keys or the audit trail: for people, these need multi-factor authentication
 * (PCI DSS 8.4.2).
 */
export const cdePermissions: ReadonlySet<Permission> = new Set<Permission>([
  'tokens:create',
  'tokens:read',
  'tokens:reveal',
  'tokens:delete',
  'cvv:use',
  'forward:use',
  'keys:admin',
  'audit:read',
]);

/**
 * Administration of the whole platform (every merchant, the operators, the keys, the audit trail): never
 * for a credential confined to one merchant, whatever its roles say.
 */
export const platformPermissions: ReadonlySet<Permission> = new Set<Permission>([
  'merchants:admin',
  'keys:admin',
  'audit:read',
  'users:admin',
]);

export const roleNames = [
  'merchant-secret',
  'merchant-publishable',
  'operator-viewer',
  'operator-support',
  'operator-reveal',
  'security-admin',
  'service-api',
  'service-vault',
] as const;

export type RoleName = (typeof roleNames)[number];

/**
 * The roles a person may hold, as an operator account or through the OIDC provider; the others are for
 * merchant keys and services.
 */
export const operatorRoles = [
  'operator-viewer',
  'operator-support',
  'operator-reveal',
  'security-admin',
] as const satisfies readonly RoleName[];
export type OperatorRole = (typeof operatorRoles)[number];

export const isOperatorRole = (value: string): value is OperatorRole =>
  (operatorRoles as readonly string[]).includes(value);

/** What each role may ever hold; a merchant key holds the scopes it was issued, within its role. */
export const rolePermissions: Record<RoleName, readonly Permission[]> = {
  'merchant-secret': [
    'tokens:create',
    'tokens:read',
    'tokens:delete',
    'cvv:use',
    'payments:write',
    'payments:read',
    'refunds:write',
    'webhooks:manage',
  ],
  'merchant-publishable': ['tokens:create'],
  'operator-viewer': ['merchants:read', 'payments:read'],
  // Support staff act on payments for a merchant (capture, cancel, refund) but never touch card data;
  // they also look after the merchant's webhooks (deliveries and retries; the dashboard, issue 10).
  'operator-support': [
    'merchants:read',
    'payments:read',
    'payments:write',
    'refunds:write',
    'tokens:read',
    'webhooks:manage',
  ],
  // Full card numbers, for the few people with a business need (PCI DSS 3.4.1, 7.2.2); assigned alone.
  'operator-reveal': ['merchants:read', 'tokens:read', 'tokens:reveal'],
  'security-admin': ['merchants:read', 'merchants:admin', 'keys:admin', 'audit:read', 'users:admin'],
  'service-api': ['tokens:read', 'cvv:use', 'forward:use'],
  // The vault's mTLS identity, as the acquirer sees it: it transacts and does nothing else.
  'service-vault': ['acquirer:transact'],
};

export function permissionsOf(roles: readonly RoleName[]): Set<Permission> {
  return new Set(roles.flatMap((role) => rolePermissions[role]));
}

export const isPermission = (value: string): value is Permission =>
  (permissions as readonly string[]).includes(value);

export const isRole = (value: string): value is RoleName => (roleNames as readonly string[]).includes(value);
