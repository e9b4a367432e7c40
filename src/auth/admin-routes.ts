import { Type } from 'typebox';
import type { AuditTrail } from '../audit/audit-trail.ts';
import type { AppInstance } from '../http/create-server.ts';
import type { Secret } from '../shared/secret.ts';
import { apiKeyIdPattern, merchantIdPattern } from '../vault/identifiers.ts';
import type { IssuedApiKey } from './api-keys.ts';
import { adminAccess, requireAdmin } from './authenticate.ts';
import type { Merchants } from './merchants.ts';
import { scopes } from './scopes.ts';

const Merchant = Type.Object({
  id: Type.String(),
  object: Type.Literal('merchant'),
  name: Type.String(),
  environment: Type.Union([Type.Literal('test'), Type.Literal('live')]),
  created_at: Type.String({ format: 'date-time' }),
});

const ApiKeyFields = {
  id: Type.String(),
  object: Type.Literal('api_key'),
  merchant_id: Type.String(),
  display: Type.String({ description: 'Recognisable prefix and last four characters' }),
  scopes: Type.Array(Type.String()),
  label: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
};

const IssuedKey = Type.Object({
  ...ApiKeyFields,
  secret: Type.String({ description: 'Shown only in this response; cardhold stores only its hash' }),
});

const KeyView = Type.Object({
  ...ApiKeyFields,
  kind: Type.String(),
  revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const ScopeList = Type.Array(Type.Union(scopes.map((s) => Type.Literal(s))), {
  minItems: 1,
  uniqueItems: true,
});
const MerchantParams = Type.Object({ id: Type.String({ pattern: merchantIdPattern }) });
const KeyParams = Type.Object({
  id: Type.String({ pattern: merchantIdPattern }),
  keyId: Type.String({ pattern: apiKeyIdPattern }),
});

/** The one place a key's secret is revealed: the response that creates it. */
const issued = (key: IssuedApiKey) => ({ ...key, object: 'api_key' as const, secret: key.secret.expose() });

export function registerAdminRoutes(
  app: AppInstance,
  deps: {
    merchants: Merchants;
    adminToken: Secret<string> | undefined;
    environment: 'test' | 'live';
    trail: AuditTrail;
  },
): void {
  const { merchants } = deps;
  const preHandler = requireAdmin(deps.adminToken, deps.trail);
  const security = [{ adminToken: [] }];

  app.post(
    '/v1/merchants',
    {
      preHandler,
      schema: {
        summary: 'Create a merchant and its first secret key',
        tags: ['admin'],
        security,
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ merchant: Merchant, api_key: IssuedKey }) },
      },
    },
    async (request, reply) => {
      const { merchant, apiKey } = await merchants.create(
        adminAccess(request),
        request.body.name,
        deps.environment,
      );
      return reply
        .code(201)
        .send({ merchant: { ...merchant, object: 'merchant' as const }, api_key: issued(apiKey) });
    },
  );

  app.get(
    '/v1/merchants/:id',
    {
      preHandler,
      schema: {
        summary: 'Read a merchant',
        tags: ['admin'],
        security,
        params: MerchantParams,
        response: { 200: Merchant },
      },
    },
    async (request) => ({
      ...(await merchants.get(adminAccess(request), request.params.id)),
      object: 'merchant' as const,
    }),
  );

  app.post(
    '/v1/merchants/:id/api-keys',
    {
      preHandler,
      schema: {
        summary: 'Issue another secret key',
        tags: ['admin'],
        security,
        params: MerchantParams,
        body: Type.Object(
          {
            scopes: Type.Optional(ScopeList),
            label: Type.Optional(Type.String({ maxLength: 200 })),
            expires_at: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: IssuedKey },
      },
    },
    async (request, reply) => {
      const key = await merchants.issueKey(adminAccess(request), request.params.id, {
        scopes: request.body.scopes,
        label: request.body.label,
        expiresAt: request.body.expires_at ? new Date(request.body.expires_at) : undefined,
      });
      return reply.code(201).send(issued(key));
    },
  );

  app.get(
    '/v1/merchants/:id/api-keys',
    {
      preHandler,
      schema: {
        summary: "List a merchant's keys (never their secrets)",
        tags: ['admin'],
        security,
        params: MerchantParams,
        response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(KeyView) }) },
      },
    },
    async (request) => ({
      object: 'list' as const,
      data: (await merchants.listKeys(adminAccess(request), request.params.id)).map((k) => ({
        ...k,
        object: 'api_key' as const,
      })),
    }),
  );

  app.delete(
    '/v1/merchants/:id/api-keys/:keyId',
    {
      preHandler,
      schema: {
        summary: 'Revoke a key',
        tags: ['admin'],
        security,
        params: KeyParams,
        response: { 200: KeyView },
      },
    },
    async (request) => ({
      ...(await merchants.revokeKey(adminAccess(request), request.params.id, request.params.keyId)),
      object: 'api_key' as const,
    }),
  );
}
