import type { AppInstance } from '../http/create-server.ts';

/**
 * The vault routes the operator dashboard calls from the browser, by route pattern. The dashboard is
 * served by the api, so these calls are cross-origin; everything else on the vault stays same-origin
 * only. Masked token reads, the reveal (the one place a full card number goes to a browser, straight
 * from the vault: the api never sees it) and the read-only key views.
 */
export const dashboardVaultRoutes: Readonly<Record<string, 'GET' | 'POST'>> = {
  '/v1/tokens': 'GET',
  '/v1/tokens/:id': 'GET',
  '/v1/tokens/:id/reveal': 'POST',
  '/v1/keys/status': 'GET',
  '/v1/keys/inventory': 'GET',
};

const preflightPaths: ReadonlyArray<[RegExp, 'GET' | 'POST']> = [
  [/^\/v1\/tokens$/, 'GET'],
  [/^\/v1\/tokens\/[A-Za-z0-9_]{1,64}$/, 'GET'],
  [/^\/v1\/tokens\/[A-Za-z0-9_]{1,64}\/reveal$/, 'POST'],
  [/^\/v1\/keys\/(status|inventory)$/, 'GET'],
];

/** Only what the dashboard sends: its bearer session, JSON, and the merchant it acts for. */
const allowedHeaders = 'authorization, content-type, cardhold-merchant';

/**
 * CORS on the vault for exactly one origin, the dashboard's (`CARDHOLD_DASHBOARD_ORIGIN`, or the api in
 * the same process), on the routes above only. No credentials mode: the dashboard sends its session as
 * a bearer header, never a cookie, so no other site's page can make a browser call with it. Headers are
 * added in onSend, so refusals (401, 403) are readable by the dashboard too; preflights are answered
 * before any route, since they carry no credential.
 */
export function allowDashboardOrigin(app: AppInstance, dashboardOrigin: () => string | undefined): void {
  const allowed = (origin: unknown): origin is string => {
    const expected = dashboardOrigin();
    return typeof origin === 'string' && expected !== undefined && origin === expected;
  };

  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'OPTIONS') return;
    const origin = request.headers.origin;
    const path = request.url.split('?')[0] ?? '';
    const method = preflightPaths.find(([pattern]) => pattern.test(path))?.[1];
    if (!method || !allowed(origin) || request.headers['access-control-request-method'] !== method) return;
    return reply
      .code(204)
      .header('access-control-allow-origin', origin)
      .header('access-control-allow-methods', method)
      .header('access-control-allow-headers', allowedHeaders)
      .header('access-control-max-age', '600')
      .header('vary', 'origin')
      .send();
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const route = request.routeOptions.url;
    const origin = request.headers.origin;
    if (route && dashboardVaultRoutes[route] === request.method && allowed(origin)) {
      reply.header('access-control-allow-origin', origin).header('vary', 'origin');
    }
    return payload;
  });
}

/** `https://host:port` of a URL; undefined unless it is an https URL (the dashboard runs on https only). */
export function originOfUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
}
