/** Permissions an API key can hold; routes declare the one they need and everything else is denied. */
export const scopes = ['tokens:create', 'tokens:read', 'tokens:delete', 'cvv:use'] as const;

export type Scope = (typeof scopes)[number];

export const defaultSecretKeyScopes: Scope[] = ['tokens:create', 'tokens:read', 'tokens:delete'];
