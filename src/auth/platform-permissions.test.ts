import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { problemHandler } from '../http/problem.ts';
import { Authorizer } from './authenticate.ts';
import { permissionsOf, platformPermissions } from './permissions.ts';
import type { Principal } from './principal.ts';

/**
 * The Authorizer's own guard, behind the credential issuers (operator accounts and the OIDC verifier
 * both refuse a security administrator confined to a merchant): should a credential ever carry both, the
 * routes of platform administration, which do not narrow what they show to one merchant, refuse it.
 */
test('a principal confined to one merchant never uses a platform-wide permission, whatever its roles hold', async () => {
  const person = (merchantId: string | null): Principal => ({
    kind: 'oidc',
    id: 'person-1',
    merchantId,
    roles: ['security-admin', 'operator-support'],
    permissions: permissionsOf(['security-admin', 'operator-support']),
    mfaAt: new Date(),
  });
  let presented = person(null);
  const authorizer = new Authorizer({ bearerTokens: async () => presented });
  const app = Fastify();
  app.setErrorHandler(problemHandler);
  app.addHook('onRequest', authorizer.hook);
  for (const access of platformPermissions) {
    app.get(`/${access.replace(':', '-')}`, { config: { access } }, async () => ({ ok: true }));
  }
  app.get('/payments', { config: { access: 'payments:read' } }, async () => ({ ok: true }));
  try {
    const call = (url: string) => app.inject({ url, headers: { authorization: 'Bearer x.y.z' } });
    for (const access of platformPermissions) {
      const url = `/${access.replace(':', '-')}`;
      presented = person(null);
      assert.equal((await call(url)).statusCode, 200, `${access}: platform-wide, allowed`);
      presented = person('mer_0123456789abcdefABCDEF');
      const refused = await call(url);
      assert.equal(refused.statusCode, 403, `${access}: confined, refused`);
      assert.equal(refused.json().code, 'forbidden');
    }
    // A confined person keeps what its merchant-level roles allow.
    presented = person('mer_0123456789abcdefABCDEF');
    assert.equal((await call('/payments')).statusCode, 200);
  } finally {
    await app.close();
  }
});
