import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AppInstance } from '../http/create-server.ts';
import { CardholdError } from '../shared/errors.ts';
import { merchantIdPattern } from '../vault/identifiers.ts';
import { adminAccess, originOf } from './authenticate.ts';
import {
  type OperatorPrincipal,
  type Operators,
  type OperatorView,
  operatorRoles,
} from './operators/operators.ts';

const OperatorId = Type.Object({ id: Type.String({ pattern: '^opr_[0-9A-Za-z]{22}$' }) });
const Username = Type.String({ minLength: 1, maxLength: 64 });
const Password = Type.String({ minLength: 1, maxLength: 1024 });
const Code = Type.String({ pattern: '^[0-9]{6}$' });

const Operator = Type.Object({
  id: Type.String(),
  object: Type.Literal('operator'),
  username: Type.String(),
  roles: Type.Array(Type.String()),
  merchant_id: Type.Union([Type.String(), Type.Null()]),
  mfa_enrolled: Type.Boolean(),
  password_change_required: Type.Boolean(),
  locked_until: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  last_login_at: Type.Union([Type.String(), Type.Null()]),
  disabled_at: Type.Union([Type.String(), Type.Null()]),
});

const view = (operator: OperatorView) => ({ ...operator, object: 'operator' as const });

function sessionOf(request: FastifyRequest): OperatorPrincipal {
  const principal = request.principal;
  if (principal?.kind !== 'operator') throw new CardholdError('forbidden');
  return principal as OperatorPrincipal;
}

/**
 * Operator sign-in (password, then TOTP; PCI DSS 8.3, 8.4), the session's own actions, and operator
 * administration (users:admin). Sign-in routes are rate limited per client address on top of the
 * per-account lockout.
 */
export function registerOperatorRoutes(
  app: AppInstance,
  deps: { operators: Operators; authPerMinute: number },
): void {
  const { operators } = deps;
  const signIn = deps.authPerMinute > 0 ? { limit: { group: 'sign-in', perMinute: deps.authPerMinute } } : {};
  const security = [{ bearer: [] }];

  app.get(
    '/.well-known/jwks.json',
    {
      config: { access: 'public' },
      schema: { summary: 'Public keys of operator session tokens (EdDSA)', tags: ['operators'] },
    },
    async () => operators.jwks(),
  );

  app.post(
    '/v1/auth/login',
    {
      config: { access: 'public', ...signIn },
      schema: {
        summary: 'Sign in, step 1: username and password',
        description:
          'Answers with a single-use challenge for the TOTP step; at the first sign-in also the otpauth:// enrolment URI (shown once).',
        tags: ['operators'],
        body: Type.Object({ username: Username, password: Password }, { additionalProperties: false }),
      },
    },
    async (request) => {
      const step = await operators.login(request.body.username, request.body.password, originOf(request));
      return {
        stage: step.stage,
        challenge_token: step.challengeToken.expose(),
        ...(step.stage === 'mfa_enrolment' ? { enrolment_uri: step.enrolmentUri.expose() } : {}),
        expires_at: step.expiresAt.toISOString(),
      };
    },
  );

  app.post(
    '/v1/auth/mfa',
    {
      config: { access: 'public', ...signIn },
      schema: {
        summary: 'Sign in, step 2: the TOTP code; answers with a session token',
        tags: ['operators'],
        body: Type.Object(
          { challenge_token: Type.String({ maxLength: 100 }), code: Code },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const session = await operators.confirmMfa(
        request.body.challenge_token,
        request.body.code,
        originOf(request),
      );
      return {
        token: session.token.expose(),
        expires_at: session.expiresAt.toISOString(),
        password_change_required: session.passwordChangeRequired,
        operator: view(session.operator),
      };
    },
  );

  app.get(
    '/v1/auth/whoami',
    {
      config: { access: 'person' },
      schema: {
        summary: 'Who this credential is: an operator session or an OIDC access token, with its roles',
        description:
          'The dashboard asks this after signing in through the identity provider, to learn the roles the provider’s groups map to.',
        tags: ['operators'],
        security,
        response: {
          200: Type.Object({
            object: Type.Literal('principal'),
            kind: Type.Union([Type.Literal('operator'), Type.Literal('oidc')]),
            id: Type.String(),
            username: Type.String(),
            roles: Type.Array(Type.String()),
            merchant_id: Type.Union([Type.String(), Type.Null()]),
            mfa: Type.Boolean({ description: 'Whether the sign-in was multi-factor' }),
          }),
        },
      },
    },
    async (request) => {
      const principal = request.principal;
      if (!principal || (principal.kind !== 'operator' && principal.kind !== 'oidc')) {
        throw new CardholdError('forbidden');
      }
      const username =
        principal.kind === 'operator' ? await operators.usernameOf(principal.id) : principal.id;
      return {
        object: 'principal' as const,
        kind: principal.kind,
        id: principal.id,
        username,
        roles: [...principal.roles],
        merchant_id: principal.merchantId,
        mfa: principal.mfaAt !== null,
      };
    },
  );

  app.post(
    '/v1/auth/refresh',
    {
      config: { access: 'session' },
      schema: { summary: 'A fresh session token', tags: ['operators'], security },
    },
    async (request) => {
      const token = (request.headers.authorization ?? '').slice('Bearer '.length);
      const fresh = await operators.refresh(token, originOf(request));
      return { token: fresh.token.expose(), expires_at: fresh.expiresAt.toISOString() };
    },
  );

  app.post(
    '/v1/auth/step-up',
    {
      config: { access: 'session' },
      schema: {
        summary: 'Re-verify TOTP (needed within 15 minutes before a full card-number reveal)',
        tags: ['operators'],
        security,
        body: Type.Object({ code: Code }, { additionalProperties: false }),
      },
    },
    async (request) => {
      const at = await operators.stepUp(sessionOf(request), request.body.code, originOf(request));
      return { mfa_at: at.toISOString() };
    },
  );

  app.post(
    '/v1/auth/password',
    {
      config: { access: 'session' },
      schema: {
        summary: 'Change your password (ends your other sessions)',
        tags: ['operators'],
        security,
        body: Type.Object(
          { current_password: Password, new_password: Password },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      await operators.changePassword(
        sessionOf(request),
        request.body.current_password,
        request.body.new_password,
        originOf(request),
      );
      return reply.code(204).send();
    },
  );

  app.post(
    '/v1/auth/logout',
    { config: { access: 'session' }, schema: { summary: 'End this session', tags: ['operators'], security } },
    async (request, reply) => {
      await operators.logout(sessionOf(request), originOf(request));
      return reply.code(204).send();
    },
  );

  app.post(
    '/v1/operators',
    {
      config: { access: 'users:admin' },
      schema: {
        summary: 'Create an operator (they change the password and enrol TOTP at first sign-in)',
        tags: ['operators'],
        security,
        body: Type.Object(
          {
            username: Username,
            password: Password,
            roles: Type.Array(Type.Union(operatorRoles.map((r) => Type.Literal(r))), {
              minItems: 1,
              uniqueItems: true,
            }),
            merchant_id: Type.Optional(Type.String({ pattern: merchantIdPattern })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Operator },
      },
    },
    async (request, reply) => {
      const created = await operators.create(adminAccess(request), {
        username: request.body.username,
        password: request.body.password,
        roles: request.body.roles,
        merchantId: request.body.merchant_id ?? null,
      });
      return reply.code(201).send(view(created));
    },
  );

  app.get(
    '/v1/operators/:id',
    {
      config: { access: 'users:admin' },
      schema: {
        summary: 'Read an operator',
        tags: ['operators'],
        security,
        params: OperatorId,
        response: { 200: Operator },
      },
    },
    async (request) => view(await operators.get(adminAccess(request), request.params.id)),
  );

  for (const [action, summary] of [
    ['unlock', 'Unlock an operator locked out by failed sign-ins'],
    ['disable', 'Disable an operator and end their sessions'],
    ['reset-mfa', 'Reset TOTP: the operator enrols again at the next sign-in'],
  ] as const) {
    app.post(
      `/v1/operators/:id/${action}`,
      {
        config: { access: 'users:admin' },
        schema: { summary, tags: ['operators'], security, params: OperatorId, response: { 200: Operator } },
      },
      async (request) => {
        const ctx = adminAccess(request);
        const id = request.params.id;
        const done =
          action === 'unlock'
            ? await operators.unlock(ctx, id)
            : action === 'disable'
              ? await operators.disable(ctx, id)
              : await operators.resetMfa(ctx, id);
        return view(done);
      },
    );
  }

  app.post(
    '/v1/operators/:id/reset-password',
    {
      config: { access: 'users:admin' },
      schema: {
        summary: 'Set a new password (the operator must change it at the next sign-in)',
        tags: ['operators'],
        security,
        params: OperatorId,
        body: Type.Object({ password: Password }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      await operators.resetPassword(adminAccess(request), request.params.id, request.body.password);
      return reply.code(204).send();
    },
  );
}
