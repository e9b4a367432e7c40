import { Type } from 'typebox';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { accessEvent } from '../audit/events.ts';
import type { ApiKeyVerifier } from '../auth/api-keys.ts';
import { originOf } from '../auth/authenticate.ts';
import type { AppInstance } from '../http/create-server.ts';
import type { RoleMetrics } from '../http/metrics.ts';
import { CardholdError, isCardholdError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { CspViolationSink, parseCspReports } from './csp-reports.ts';
import { CSP_REPORT_PATH, hostedFieldsCsp, reportingEndpoints } from './hosted-fields-csp.ts';
import { hostedFieldsPage } from './hosted-fields-page.ts';
import { type WebAsset, webAssets } from './web-assets.ts';

const HostedFieldsQuery = Type.Object(
  {
    key: Type.String({ pattern: '^pk_(test|live)_[0-9A-Za-z]{43}$', description: 'The publishable key' }),
    origin: Type.String({
      maxLength: 200,
      description: 'The origin of the merchant page that frames the fields; one of the key’s allowed origins',
    }),
  },
  { additionalProperties: false },
);

/** A serialized origin (scheme://host[:port]) equal to what URL.origin makes of it, or undefined. */
function exactOrigin(value: string): string | undefined {
  try {
    const origin = new URL(value).origin;
    return origin === value && origin !== 'null' ? origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The hosted card fields on the vault's origin: the iframe page, its script and stylesheet, and the
 * merchant SDK. All public: they serve no card data, and the page itself checks the publishable key
 * and the framing origin before it renders (docs/web.md).
 */
export function registerHostedFieldsRoutes(
  app: AppInstance,
  deps: { apiKeys: ApiKeyVerifier; trail: AuditTrail; logger: Logger; metrics: RoleMetrics | undefined },
): void {
  const { apiKeys, trail } = deps;
  const violations = new CspViolationSink(deps.logger, deps.metrics);

  app.get(
    '/hosted/card-fields',
    {
      config: { access: 'public' },
      schema: {
        summary: 'The hosted card fields (HTML, for an iframe)',
        description:
          'Renders only for a publishable key whose allowed origins include `origin`, with frame-ancestors limited to that origin. Mounted by cardhold.js.',
        tags: ['hosted fields'],
        querystring: HostedFieldsQuery,
      },
    },
    async (request, reply) => {
      const { key, origin } = request.query;
      const refuse = async (reason: string, merchantId: string | null, detail: string) => {
        await trail
          .record(
            accessEvent(
              { actor: { type: 'anonymous', id: trail.keyedHash(key) }, origin: originOf(request) },
              'access.denied',
              { type: 'route', id: '/hosted/card-fields' },
              merchantId,
              { failure: reason },
            ),
          )
          .catch(() => undefined);
        throw new CardholdError('forbidden', { detail });
      };
      // Opened as a page of its own (or in an <object>, …) it would be a phishing surface on our origin.
      const destination = request.headers['sec-fetch-dest'];
      if (destination !== undefined && destination !== 'iframe') {
        await refuse('not_framed', null, 'The card fields open only inside an iframe');
      }
      const framing = exactOrigin(origin);
      if (!framing) throw new CardholdError('request_invalid', { field: 'origin', detail: 'Not an origin' });
      let principal: Awaited<ReturnType<ApiKeyVerifier['verify']>>;
      try {
        principal = await apiKeys.verify(key);
      } catch (error) {
        if (isCardholdError(error) && error.code === 'unauthenticated')
          await refuse('unauthenticated', null, 'The publishable key is not valid');
        throw error;
      }
      if (!principal.allowedOrigins || !principal.permissions.has('tokens:create')) {
        await refuse('forbidden', principal.merchantId, 'The card fields need a publishable key');
      }
      if (!principal.allowedOrigins?.includes(framing)) {
        await refuse(
          'origin_not_allowed',
          principal.merchantId,
          'This origin is not among the publishable key’s allowed origins',
        );
      }
      const assets = await webAssets();
      return reply
        .header('content-security-policy', hostedFieldsCsp(framing))
        .header('reporting-endpoints', reportingEndpoints)
        .header('cross-origin-resource-policy', 'same-origin')
        .type('text/html; charset=utf-8')
        .send(hostedFieldsPage(assets));
    },
  );

  // Browsers post violation reports in their own media types; only this route parses them.
  app.register(async (scope) => {
    scope.addContentTypeParser(
      ['application/csp-report', 'application/reports+json'],
      { parseAs: 'string' },
      (_request, body, done) => {
        try {
          done(null, JSON.parse(body as string));
        } catch {
          // Never the parser's message: it quotes the body.
          done(new SyntaxError('not JSON'), undefined);
        }
      },
    );
    scope.post(
      CSP_REPORT_PATH,
      {
        // No rate limit: behind a proxy every browser shares one address, and junk posts would use up the
        // budget that real reports need. The body limit bounds the work; the log budget, the logs.
        config: { access: 'public' },
        bodyLimit: 64 * 1024,
        schema: {
          summary: 'Content security policy violation reports from the card fields page',
          description:
            'Where browsers report what the card fields page’s CSP blocked (PCI DSS 11.6.1): `application/reports+json` (report-to) or `application/csp-report` (report-uri). Each violation counts in `cardhold_csp_violations_total{directive}` and is logged as a warning (directive, and the blocked keyword, scheme or site; never a path, query, subdomain or sample), one line per kind a minute and at most 20 a minute in all. Answers 204.',
          tags: ['hosted fields'],
        },
      },
      async (request, reply) => {
        const reported = parseCspReports(request.body);
        if (!reported) {
          throw new CardholdError('request_invalid', {
            field: 'body',
            detail: 'The body is not a CSP violation report',
          });
        }
        violations.record(reported);
        return reply.code(204).send();
      },
    );
  });

  const serve =
    (pick: (assets: Awaited<ReturnType<typeof webAssets>>) => WebAsset, crossOrigin: boolean) =>
    async (_request: unknown, reply: import('fastify').FastifyReply) => {
      const asset = pick(await webAssets());
      if (crossOrigin) {
        // Merchant pages load the SDK with integrity=… crossorigin="anonymous", which needs CORS.
        reply
          .header('access-control-allow-origin', '*')
          .header('cross-origin-resource-policy', 'cross-origin');
      } else reply.header('cross-origin-resource-policy', 'same-origin');
      return reply.type(asset.contentType).send(asset.body);
    };
  const scriptRoute = (summary: string) => ({
    config: { access: 'public' as const },
    schema: { summary, tags: ['hosted fields'] },
  });
  app.get(
    '/hosted/card-fields.js',
    scriptRoute('The hosted fields’ script'),
    serve((a) => a.cardFields, false),
  );
  app.get(
    '/hosted/card-fields.css',
    scriptRoute('The hosted fields’ stylesheet'),
    serve((a) => a.cardFieldsStyle, false),
  );
  app.get(
    '/sdk/cardhold.js',
    scriptRoute('cardhold.js, the merchant SDK'),
    serve((a) => a.sdk, true),
  );
}
