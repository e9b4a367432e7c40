import { constants, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  LogController,
  type RawServerDefault,
} from 'fastify';
import type { Redis } from 'ioredis';
import type { Authorizer, RouteAccess } from '../auth/authenticate.ts';
import { CardholdError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { redactPans } from '../shared/pan-detect.ts';
import type { RoleMetrics } from './metrics.ts';
import { problemHandler, sendProblem, toProblem } from './problem.ts';
import { compileValidator } from './validation.ts';
import { illFormedTextAt } from './well-formed-text.ts';

export type AppInstance = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
  ca: Buffer;
}

export interface RouteEntry {
  method: string;
  url: string;
  access: RouteAccess;
}

const routeTables = new WeakMap<object, RouteEntry[]>();

/** Every route the server registered, with the access it declared: the authorization matrix's input. */
export function routeTable(app: AppInstance): readonly RouteEntry[] {
  return routeTables.get(app) ?? [];
}

export interface ServerOptions {
  /** Authenticates callers and enforces each route's declared access (src/auth/authenticate.ts). */
  authorizer: Authorizer;
  /** Where rate-limit counters live: Redis shared by replicas, or this process when undefined. */
  rateLimitRedis?: Redis | undefined;
  role: 'vault' | 'api' | 'acquirer';
  logger: Logger;
  tls: TlsMaterial;
  bodyLimit: number;
  title: string;
  description: string;
  version: string;
  /** The role's Prometheus metrics; every response is counted and timed by route pattern. */
  metrics?: RoleMetrics | undefined;
}

const baseHeaders = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=63072000',
};
// The API docs are never framed: on the vault they share the card fields' origin. (Swagger UI sets its
// own content security policy, below.)
const docsHeaders = { ...baseHeaders, 'x-frame-options': 'DENY' };
const apiHeaders = {
  ...baseHeaders,
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,64}$/;

/** Accepts a caller's request id only if it is well-formed and cannot smuggle a card number into logs. */
function requestIdFrom(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || !REQUEST_ID.test(header)) return undefined;
  return redactPans(header) === header ? header : undefined;
}

/**
 * One fastify server per role, all built the same way: HTTPS only (TLS 1.2 minimum), strict schema
 * validation, RFC 9457 problems for every error, request ids on every log line and response, no-store
 * caching, and an OpenAPI document at /docs.
 */
export async function createServer(options: ServerOptions): Promise<AppInstance> {
  const app = Fastify({
    loggerInstance: options.logger.child({ role: options.role }),
    // Client certificates are asked for, never required: merchants authenticate with keys, services
    // with certificates from the configured CA (checked by the authorizer, per route).
    https: {
      key: options.tls.key,
      cert: options.tls.cert,
      ca: options.tls.ca,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      // A client certificate is checked once per connection: TLS 1.2 renegotiation, which could present
      // another one on the same connection, is refused.
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    },
    bodyLimit: options.bodyLimit,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']) ?? randomUUID(),
    // Our onResponse hook writes one access line per request, with the route pattern instead of the URL.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // A URL that cannot be decoded, or a path segment too long: a problem like any other, which never
    // quotes the URL (it may hold anything, a card number included).
    frameworkErrors: (error, request, reply) => {
      reply.headers(apiHeaders);
      const detail =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A path segment is too long' : 'The URL is malformed';
      sendProblem(
        reply,
        toProblem(new CardholdError('request_invalid', { field: 'url', detail }), String(request.id)),
      );
    },
    forceCloseConnections: 'idle',
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as AppInstance;

  // Deny by default: a route that declares no access requirement cannot be registered at all.
  const table: RouteEntry[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (route) => {
    if (route.config?.access === undefined) {
      if (!route.url.startsWith('/docs')) {
        throw new Error(`route ${String(route.method)} ${route.url} declares no access requirement`);
      }
      route.config = { ...route.config, access: 'public' };
    }
    for (const method of [route.method].flat()) {
      table.push({ method: String(method), url: route.url, access: route.config.access as RouteAccess });
    }
  });
  app.setValidatorCompiler(compileValidator as never);
  app.setErrorHandler(problemHandler);
  // Before the schemas run: a body-less write becomes an empty body, and text the database could not
  // keep is the caller's error (well-formed-text.ts).
  app.addHook('preValidation', (request, _reply, done) => {
    // A POST with no body at all (`curl -X POST …/capture`) is an empty object, as Stripe takes it: the
    // schema then names any field that is required instead of refusing the body as a whole.
    if (
      request.body === undefined &&
      request.headers['content-type'] === undefined &&
      (request.method === 'POST' || request.method === 'PUT' || request.method === 'PATCH')
    ) {
      request.body = {};
    }
    for (const [part, value] of [
      ['body', request.body],
      ['query', request.query],
      ['params', request.params],
    ] as const) {
      const at = illFormedTextAt(value);
      if (at !== undefined) {
        done(
          new CardholdError('request_invalid', {
            field: at || part,
            detail: 'Text must be well-formed Unicode, without NUL characters',
          }),
        );
        return;
      }
    }
    done();
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, toProblem(new CardholdError('route_not_found'), String(request.id))),
  );

  const logRequests = options.logger.isLevelEnabled('info');
  const metrics = options.metrics;
  // Set once per request, synchronously: these headers never depend on the response.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(request.url.startsWith('/docs') ? docsHeaders : apiHeaders);
    reply.header('x-request-id', request.id);
    done();
  });
  // After the headers above, so that refusals carry them too.
  app.addHook('onRequest', options.authorizer.hook);
  app.addHook('onResponse', (request, reply, done) => {
    // The route pattern, not the URL: ids and query strings stay out of the access log and the metrics.
    const route = request.routeOptions.url ?? 'unmatched';
    metrics?.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    if (logRequests) {
      request.log.info(
        {
          method: request.method,
          route,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 10) / 10,
        },
        'request completed',
      );
    }
    done();
  });

  // Limits apply to routes that declare `config.limit`, per group of routes and per credential (the
  // client address without one). One store for all routes, so that a group's routes share a budget.
  await app.register(rateLimit, {
    global: true,
    timeWindow: 60_000,
    allowList: (request) => request.routeOptions.config?.limit === undefined,
    max: (request) => request.routeOptions.config?.limit?.perMinute ?? 1,
    ...(options.rateLimitRedis
      ? { redis: options.rateLimitRedis, nameSpace: `cardhold-rl-${options.role}-` }
      : {}),
    keyGenerator: (request) =>
      `${request.routeOptions.config?.limit?.group}:${request.principal?.id ?? request.ip}`,
    errorResponseBuilder: (_request, context) =>
      new CardholdError('rate_limited', { detail: `Too many requests; retry in ${context.after}` }),
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: options.title, description: options.description, version: options.version },
      components: {
        securitySchemes: {
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'Merchant secret key (sk_test_… or sk_live_…)',
          },
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'An operator session or OIDC access token, or the bootstrap administrator token (CARDHOLD_ADMIN_TOKEN)',
          },
        },
      },
    },
  });
  // Swagger UI under its own strict policy (its scripts and styles by hash), never framed: on the vault
  // it shares the card fields' origin, so a flaw in it must not reach them.
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // Its React code sets style attributes at run time: inline styles only, never inline script.
    transformStaticCSP: (header: string) =>
      header
        .replace("frame-ancestors 'self'", "frame-ancestors 'none'")
        .replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"),
  });
  return app;
}
