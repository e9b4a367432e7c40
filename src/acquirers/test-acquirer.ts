import type { Authorizer } from '../auth/authenticate.ts';
import { type AppInstance, createServer, type TlsMaterial } from '../http/create-server.ts';
import { registerHealth } from '../http/health.ts';
import type { RoleMetrics } from '../http/metrics.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * The deterministic test acquirer. For now it serves health only; the payments issue gives it the
 * authorize/capture/void/refund/sync API and its test cards.
 */
export async function createTestAcquirer(options: {
  authorizer: Authorizer;
  logger: Logger;
  tls: TlsMaterial;
  bodyLimit: number;
  version: string;
  metrics?: RoleMetrics | undefined;
}): Promise<AppInstance> {
  const app = await createServer({
    role: 'acquirer',
    authorizer: options.authorizer,
    logger: options.logger,
    tls: options.tls,
    bodyLimit: options.bodyLimit,
    title: 'cardhold test acquirer',
    description: 'A deterministic stand-in for a card processor, for tests and demos.',
    version: options.version,
    metrics: options.metrics,
  });
  registerHealth(app, {});
  return app;
}
