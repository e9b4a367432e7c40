import { type Permission, rolePermissions } from './permissions.ts';

/**
 * What a merchant API key can be issued: its role's permissions (a secret key can hold any merchant
 * permission, a publishable key only tokens:create). A key holds the subset it was issued.
 */
export const secretKeyScopes = rolePermissions['merchant-secret'];
export const publishableKeyScopes = rolePermissions['merchant-publishable'];

export type Scope = Permission;

/** A new secret key's scopes unless others are asked for: card tokens, payments, refunds and webhooks. */
export const defaultSecretKeyScopes: Scope[] = [
  'tokens:create',
  'tokens:read',
  'tokens:delete',
  'payments:write',
  'payments:read',
  'refunds:write',
  'webhooks:manage',
];
