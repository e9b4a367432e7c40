import { type Permission, permissionsOf, type RoleName } from '../../../auth/permissions.ts';

/**
 * The dashboard's only link to cardhold: the api's and the vault's JSON routes, called with the
 * operator's session token as a bearer header. The token lives in this module's memory only (never in
 * localStorage, sessionStorage or a cookie): a reload signs out, and no other site can make the browser
 * send it, so there is no ambient credential to forge requests with (no CSRF surface).
 */
export interface Operator {
  id: string;
  username: string;
  roles: RoleName[];
  merchant_id: string | null;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  constructor(status: number, code: string, detail: string) {
    super(detail);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

interface Session {
  token: string;
  expiresAt: number;
  operator: Operator;
  permissions: Set<Permission>;
  /** An operator session (cardhold's own token) or an access token from the identity provider. */
  kind: 'operator' | 'oidc';
}

let session: Session | null = null;
let merchant: string | null = null;
let sessionEnded: (reason: string) => void = () => undefined;
const vaultOrigin = document.querySelector<HTMLMetaElement>('meta[name="cardhold-vault"]')?.content ?? '';

export const signedIn = (): Operator | null => session?.operator ?? null;
/** Whether the session came from the identity provider (its MFA is renewed there, not by a code here). */
export const viaIdentityProvider = (): boolean => session?.kind === 'oidc';
export const holds = (permission: Permission): boolean => session?.permissions.has(permission) ?? false;
export const currentMerchant = (): string | null => session?.operator.merchant_id ?? merchant;
export const chooseMerchant = (id: string | null): void => {
  merchant = id;
};
export const vaultAvailable = (): boolean => vaultOrigin !== '';
export const onSessionEnded = (handler: (reason: string) => void): void => {
  sessionEnded = handler;
};

export function startSession(
  token: string,
  expiresAt: string,
  operator: Operator,
  kind: 'operator' | 'oidc' = 'operator',
): void {
  session = {
    token,
    expiresAt: Date.parse(expiresAt),
    operator,
    permissions: permissionsOf(operator.roles),
    kind,
  };
  merchant = operator.merchant_id;
}

/**
 * A session from the identity provider's access token: the api says who it is and which roles the
 * provider's groups map to (the API decides; the page only follows). It ends when the token expires:
 * there is no refresh, and signing in again goes back through the provider.
 */
export async function startOidcSession(accessToken: string, expiresInSeconds: number): Promise<void> {
  const response = await send('api', 'GET', '/v1/auth/whoami', undefined, {
    authorization: `Bearer ${accessToken}`,
  });
  if (!response.ok) throw await problemOf(response);
  const who = (await response.json()) as Operator;
  const expiresAt = new Date(Date.now() + expiresInSeconds * 1000).toISOString();
  startSession(accessToken, expiresAt, who, 'oidc');
}

/** Forgets the token; the caller tells the server when it can (logout). */
export function endSession(reason: string): void {
  if (!session) return;
  session = null;
  merchant = null;
  sessionEnded(reason);
}

async function send(
  target: 'api' | 'vault',
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<Response> {
  const base = target === 'api' ? '' : vaultOrigin;
  return fetch(`${base}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  });
}

async function problemOf(response: Response): Promise<ApiError> {
  let code = 'error';
  let detail = `The server answered ${response.status}`;
  try {
    const problem = (await response.json()) as { code?: string; detail?: string; title?: string };
    code = problem.code ?? code;
    detail = problem.detail ?? problem.title ?? detail;
  } catch {
    // Not a problem document: keep the status.
  }
  return new ApiError(response.status, code, detail);
}

/** Sign-in steps: no session yet. */
export async function publicCall<T>(path: string, body: unknown): Promise<T> {
  const response = await send('api', 'POST', path, body, {});
  if (!response.ok) throw await problemOf(response);
  return (await response.json()) as T;
}

/** Renews the 15-minute token while the operator is active; the server's idle clock still rules. */
async function refreshIfDue(): Promise<void> {
  if (session?.kind !== 'operator' || session.expiresAt - Date.now() > 5 * 60_000) return;
  const response = await send('api', 'POST', '/v1/auth/refresh', undefined, {
    authorization: `Bearer ${session.token}`,
  });
  if (response.ok) {
    const fresh = (await response.json()) as { token: string; expires_at: string };
    session.token = fresh.token;
    session.expiresAt = Date.parse(fresh.expires_at);
  }
}

/**
 * A call with the session. A 401 other than `mfa_required` means the session is over (idle for 15
 * minutes, expired, signed out elsewhere, account disabled): the dashboard forgets it and shows the
 * sign-in form. 403 and the rest are thrown for the view to show.
 */
export async function call<T>(
  target: 'api' | 'vault',
  method: string,
  path: string,
  body?: unknown,
  options: { idempotent?: boolean } = {},
): Promise<T> {
  if (!session) throw new ApiError(401, 'session_invalid', 'Not signed in');
  await refreshIfDue();
  const current = session;
  if (!current) throw new ApiError(401, 'session_invalid', 'Not signed in');
  const headers: Record<string, string> = { authorization: `Bearer ${current.token}` };
  const acting = currentMerchant();
  if (acting && current.operator.merchant_id === null) headers['cardhold-merchant'] = acting;
  if (options.idempotent) headers['idempotency-key'] = crypto.randomUUID();
  const response = await send(target, method, path, body, headers);
  if (response.status === 204) return undefined as T;
  if (!response.ok) {
    const error = await problemOf(response);
    if (error.status === 401 && error.code !== 'mfa_required') {
      endSession(
        'Your session has ended (15 minutes without activity, signed out, or expired). Sign in again.',
      );
    }
    throw error;
  }
  return (await response.json()) as T;
}

export async function logout(): Promise<void> {
  if (!session) return;
  // An operator session ends at the api too; a provider's token is forgotten here and expires there.
  if (session.kind === 'operator') await call('api', 'POST', '/v1/auth/logout').catch(() => undefined);
  endSession('Signed out.');
}
