import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export const ISSUER = 'https://idp.test.cardhold.invalid';
export const AUDIENCE = 'cardhold-api';

export interface MintClaims {
  groups: string[];
  amr?: string[];
  merchant?: string;
  audience?: string;
  authTime?: number;
  subject?: string;
}

/** Who signs in at the provider's authorization endpoint: the next code is issued for them. */
export interface ProviderUser {
  subject: string;
  groups: string[];
  amr?: string[];
  /** When the provider last authenticated them (auth_time, unix seconds); absent: now. */
  authTime?: number;
}

interface PendingCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  user: ProviderUser;
  audience: string;
}

/**
 * A local identity provider on loopback (plain HTTP, which cardhold accepts for loopback only): an
 * EdDSA key and its JWKS, a minting function, and the authorization code flow with PKCE (S256) that a
 * browser public client uses, its token endpoint answering with CORS. The authorization endpoint signs
 * in `user` at once, as a provider would after its own password and MFA, and remembers what it saw.
 */
export async function startIdentityProvider() {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-1', alg: 'EdDSA', use: 'sig' };
  const codes = new Map<string, PendingCode>();
  const state = {
    user: { subject: 'person-1', groups: [] as string[] } as ProviderUser,
    authorizeRequests: [] as URLSearchParams[],
    tokenRequests: [] as URLSearchParams[],
  };

  const mint = (claims: MintClaims) =>
    new SignJWT({
      groups: claims.groups,
      amr: claims.amr ?? ['pwd', 'otp'],
      ...(claims.merchant ? { cardhold_merchant: claims.merchant } : {}),
      ...(claims.authTime !== undefined ? { auth_time: claims.authTime } : {}),
    })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'test-1' })
      .setIssuer(ISSUER)
      .setAudience(claims.audience ?? AUDIENCE)
      .setSubject(claims.subject ?? `person-${claims.groups.join('-')}`)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  const json = (
    response: import('node:http').ServerResponse,
    status: number,
    body: unknown,
    origin?: string,
  ) =>
    response
      .writeHead(status, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        ...(origin ? { 'access-control-allow-origin': origin, vary: 'Origin' } : {}),
      })
      .end(JSON.stringify(body));

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/jwks') {
      json(response, 200, { keys: [jwk] });
      return;
    }
    if (url.pathname === '/authorize' && request.method === 'GET') {
      const q = url.searchParams;
      state.authorizeRequests.push(q);
      const redirectUri = q.get('redirect_uri') ?? '';
      if (
        q.get('response_type') !== 'code' ||
        !q.get('client_id') ||
        q.get('code_challenge_method') !== 'S256' ||
        !q.get('code_challenge') ||
        !q.get('state') ||
        !redirectUri
      ) {
        response.writeHead(400).end('bad authorization request');
        return;
      }
      const code = randomBytes(16).toString('base64url');
      codes.set(code, {
        clientId: q.get('client_id') as string,
        redirectUri,
        challenge: q.get('code_challenge') as string,
        user: state.user,
        audience: q.get('audience') ?? AUDIENCE,
      });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') as string);
      response.writeHead(302, { location: back.toString() }).end();
      return;
    }
    if (url.pathname === '/token' && request.method === 'POST') {
      const origin = request.headers.origin;
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on('end', () => {
        const form = new URLSearchParams(body);
        state.tokenRequests.push(form);
        const code = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        const challenge = createHash('sha256').update(verifier).digest('base64url');
        if (
          !code ||
          form.get('grant_type') !== 'authorization_code' ||
          form.get('client_id') !== code.clientId ||
          form.get('redirect_uri') !== code.redirectUri ||
          challenge !== code.challenge
        ) {
          json(response, 400, { error: 'invalid_grant' }, origin);
          return;
        }
        void mint({
          groups: code.user.groups,
          subject: code.user.subject,
          audience: code.audience,
          ...(code.user.amr ? { amr: code.user.amr } : {}),
          ...(code.user.authTime !== undefined ? { authTime: code.user.authTime } : {}),
        }).then((token) =>
          json(response, 200, { access_token: token, token_type: 'Bearer', expires_in: 300 }, origin),
        );
      });
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    jwksUri: `${base}/jwks`,
    authorizationEndpoint: `${base}/authorize`,
    tokenEndpoint: `${base}/token`,
    mint,
    state,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
