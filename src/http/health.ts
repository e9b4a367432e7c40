import { Type } from 'typebox';
import { withTimeout } from '../shared/with-timeout.ts';
import type { AppInstance } from './create-server.ts';

export type ReadinessCheck = () => Promise<void>;

/**
 * /healthz answers while the process can serve HTTP (liveness); /readyz runs every dependency check
 * (database, volatile store, key provider) and is 503 when any fails, so no traffic reaches a replica
 * that cannot serve card data safely.
 */
export function registerHealth(app: AppInstance, checks: Record<string, ReadinessCheck>): void {
  app.get(
    '/healthz',
    {
      config: { access: 'public' },
      schema: { hide: true, response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );
  app.get('/readyz', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) => {
    const results: Record<string, string> = {};
    let ready = true;
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), 2000);
          results[name] = 'ok';
        } catch {
          results[name] = 'failing';
          ready = false;
        }
      }),
    );
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: results });
  });
}
