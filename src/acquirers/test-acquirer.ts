import type { Authorizer } from '../auth/authenticate.ts';
import { type AppInstance, createServer, type TlsMaterial } from '../http/create-server.ts';
import { registerHealth } from '../http/health.ts';
import type { RoleMetrics } from '../http/metrics.ts';
import type { Logger } from '../shared/logger.ts';
import { SeededLatency } from './latency.ts';
import { AcquirerLedger } from './ledger.ts';
import { registerAcquirerRoutes } from './routes.ts';

/**
 * The only client identity the acquirer transacts with: the vault, whose forward proxy is the one place
 * card data leaves the CDE. Its certificate (URI SAN) maps to the `service-vault` role.
 */
export const acquirerClientIdentity = 'spiffe://cardhold/vault';

/**
 * The deterministic test acquirer: a processor-shaped HTTPS API (authorize, capture, void, refund,
 * sync) over an in-memory ledger, with outcomes chosen by test card number (docs/test-acquirer.md).
 */
export async function createTestAcquirer(options: {
  authorizer: Authorizer;
  logger: Logger;
  tls: TlsMaterial;
  bodyLimit: number;
  version: string;
  metrics?: RoleMetrics | undefined;
  /** How long the timeout test card holds its request before answering 504. */
  hangMs: number;
  /** Added latency per API request: 0 to `maxMs`, from a sequence seeded by `seed`. */
  latency: { maxMs: number; seed: number };
}): Promise<AppInstance> {
  const app = await createServer({
    role: 'acquirer',
    authorizer: options.authorizer,
    logger: options.logger,
    tls: options.tls,
    bodyLimit: options.bodyLimit,
    title: 'cardhold test acquirer',
    description:
      'A deterministic stand-in for a card processor, for tests and demos. Only the vault (mTLS, spiffe://cardhold/vault) may transact.',
    version: options.version,
    metrics: options.metrics,
  });
  registerHealth(app, {});
  registerAcquirerRoutes(app, {
    ledger: new AcquirerLedger(),
    latency: new SeededLatency(options.latency.seed, options.latency.maxMs),
    hangMs: options.hangMs,
  });
  return app;
}
