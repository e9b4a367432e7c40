import { decodeJwt } from 'jose';
import { type Config, ConfigError } from '../config/config.ts';
import { OidcVerifier } from './oidc.ts';
import { isOperatorRole, operatorRoles } from './permissions.ts';
import type { Principal } from './principal.ts';

function authenticatedAt(token: string): Date {
  const claims = decodeJwt(token);
  const seconds = typeof claims.auth_time === 'number' ? claims.auth_time : claims.iat;
  return typeof seconds === 'number' ? new Date(seconds * 1000) : new Date(0);
}

/**
 * The configured OIDC provider as a bearer-token authenticator: every token it is handed (JWT-shaped
 * ones only, by `bearerTokenAuthenticator`) is verified, and refused if it fails any check.
 */
export function oidcAuthenticator(
  config: Config,
): ((token: string) => Promise<Principal | undefined>) | undefined {
  if (!config.oidcIssuer) return undefined;
  let roleMap: Record<string, string>;
  try {
    roleMap = JSON.parse(config.oidcRoleMap as string) as Record<string, string>;
  } catch {
    throw new ConfigError('CARDHOLD_OIDC_ROLE_MAP', 'must be a JSON object of group names to roles');
  }
  if (typeof roleMap !== 'object' || roleMap === null || Array.isArray(roleMap)) {
    throw new ConfigError('CARDHOLD_OIDC_ROLE_MAP', 'must be a JSON object of group names to roles');
  }
  for (const role of Object.values(roleMap)) {
    // People only: a group mapped to a service's or a merchant key's role would let a person act as the
    // api towards the vault, or as any merchant's secret key.
    if (typeof role !== 'string' || !isOperatorRole(role)) {
      throw new ConfigError(
        'CARDHOLD_OIDC_ROLE_MAP',
        `names a role that is not a person's; use ${operatorRoles.join(', ')}`,
      );
    }
  }
  let verifier: OidcVerifier;
  try {
    verifier = new OidcVerifier({
      issuer: config.oidcIssuer,
      audience: config.oidcAudience as string,
      jwksUri: config.oidcJwksUri as string,
      roleClaim: config.oidcRoleClaim,
      roleMap: roleMap as never,
      mfaAmr: config.oidcMfaAmr
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean),
    });
  } catch (error) {
    throw new ConfigError(
      'CARDHOLD_OIDC_ISSUER',
      `the OIDC settings are not usable (${(error as Error).message})`,
    );
  }
  return async (token) => {
    const oidc = await verifier.verify(token);
    return {
      kind: 'oidc',
      id: oidc.subject,
      merchantId: oidc.merchantId,
      roles: oidc.roles,
      permissions: oidc.permissions,
      // When the provider last authenticated the person with MFA: auth_time, else the token's issue time.
      mfaAt: oidc.mfa ? authenticatedAt(token) : null,
    };
  };
}
