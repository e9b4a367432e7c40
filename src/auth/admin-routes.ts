import { Type } from 'typebox';
import type { AppInstance } from '../http/create-server.ts';
import { requestDateTime } from '../shared/request-date-time.ts';
import { apiKeyIdPattern, merchantIdPattern } from '../vault/identifiers.ts';
import type { IssuedApiKey } from './api-keys.ts';
import { adminAccess, assertMerchantVisible } from './authenticate.ts';
import type { Merchants } from './merchants.ts';
import { publishableKeyScopes, secretKeyScopes } from './scopes.ts';

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
  kind: Type.Union([Type.Literal('secret'), Type.Literal('publishable')]),
  allowed_origins: Type.Array(Type.String(), {
    description: 'Publishable keys: the browser origins allowed',
  }),
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
  rotated_to: Type.Union([Type.String(), Type.Null()]),
  revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const ScopeList = Type.Array(
  Type.Union([...secretKeyScopes, ...publishableKeyScopes].map((s) => Type.Literal(s))),
  {
    minItems: 1,
    uniqueItems: true,
  },
);
const Origin = Type.String({ pattern: '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$', maxLength: 255 });
const MerchantParams = Type.Object({ id: Type.String({ pattern: merchantIdPattern }) });
const KeyParams = Type.Object({
  id: Type.String({ pattern: merchantIdPattern }),
  keyId: Type.String({ pattern: apiKeyIdPattern }),
});

/** The one place a key's secret is revealed: the response that creates it. */
const issued = (key: IssuedApiKey) => ({ ...key, object: 'api_key' as const, secret: key.secret.expose() });

/**
 * Merchants and their API keys on the api role. Reading needs merchants:read, changing needs
 * merchants:admin (security-admin); staff confined to one merchant see only that one.
 */
export function registerAdminRoutes(
  app: AppInstance,
  deps: { merchants: Merchants; environment: 'test' | 'live' },
): void {
  const { merchants } = deps;
  const security = [{ bearer: [] }];

  app.post(
    '/v1/merchants',
    {
      config: { access: 'merchants:admin' },
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
      config: { access: 'merchants:read' },
      schema: {
        summary: 'Read a merchant',
        tags: ['admin'],
        security,
        params: MerchantParams,
        response: { 200: Merchant },
      },
    },
    async (request) => {
      assertMerchantVisible(request, request.params.id);
      const merchant = await merchants.get(adminAccess(request), request.params.id);
      return { ...merchant, object: 'merchant' as const };
    },
  );

  app.post(
    '/v1/merchants/:id/api-keys',
    {
      config: { access: 'merchants:admin' },
      schema: {
        summary: 'Issue a secret or publishable key',
        description:
          'A publishable key (pk_…) can only tokenize, into this merchant, from the listed browser origins.',
        tags: ['admin'],
        security,
        params: MerchantParams,
        body: Type.Object(
          {
            kind: Type.Optional(Type.Union([Type.Literal('secret'), Type.Literal('publishable')])),
            scopes: Type.Optional(ScopeList),
            allowed_origins: Type.Optional(
              Type.Array(Origin, { minItems: 1, maxItems: 20, uniqueItems: true }),
            ),
            label: Type.Optional(Type.String({ maxLength: 200 })),
            expires_at: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: IssuedKey },
      },
    },
    async (request, reply) => {
      assertMerchantVisible(request, request.params.id);
      const body = request.body;
      const key = await merchants.issueKey(adminAccess(request), request.params.id, {
        kind: body.kind ?? 'secret',
        scopes: body.scopes,
        allowedOrigins: body.allowed_origins,
        label: body.label,
        expiresAt: body.expires_at ? requestDateTime(body.expires_at, 'expires_at') : undefined,
      });
      return reply.code(201).send(issued(key));
    },
  );

  app.post(
    '/v1/merchants/:id/api-keys/:keyId/rotate',
    {
      config: { access: 'merchants:admin' },
      schema: {
        summary: 'Rotate a key: issue its successor, keep the old one working for an overlap',
        description:
          'The successor has the same kind, scopes, origins and label. The old key expires at the end of the overlap (0 ends it now).',
        tags: ['admin'],
        security,
        params: KeyParams,
        body: Type.Object(
          { overlap_seconds: Type.Integer({ minimum: 0, maximum: 30 * 24 * 3600, default: 86_400 }) },
          { additionalProperties: false },
        ),
        response: { 201: IssuedKey },
      },
    },
    async (request, reply) => {
      assertMerchantVisible(request, request.params.id);
      const key = await merchants.rotateKey(
        adminAccess(request),
        request.params.id,
        request.params.keyId,
        request.body.overlap_seconds,
      );
      return reply.code(201).send(issued(key));
    },
  );

  app.get(
    '/v1/merchants/:id/api-keys',
    {
      config: { access: 'merchants:read' },
      schema: {
        summary: "List a merchant's keys (never their secrets)",
        tags: ['admin'],
        security,
        params: MerchantParams,
        response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(KeyView) }) },
      },
    },
    async (request) => {
      assertMerchantVisible(request, request.params.id);
      const keys = await merchants.listKeys(adminAccess(request), request.params.id);
      return { object: 'list' as const, data: keys.map((k) => ({ ...k, object: 'api_key' as const })) };
    },
  );

  app.delete(
    '/v1/merchants/:id/api-keys/:keyId',
    {
      config: { access: 'merchants:admin' },
      schema: {
        summary: 'Revoke a key',
        tags: ['admin'],
        security,
        params: KeyParams,
        response: { 200: KeyView },
      },
    },
    async (request) => {
      assertMerchantVisible(request, request.params.id);
      const key = await merchants.revokeKey(adminAccess(request), request.params.id, request.params.keyId);
      return { ...key, object: 'api_key' as const };
    },
  );
}
