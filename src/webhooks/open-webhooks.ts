import type { AuditTrail } from '../audit/audit-trail.ts';
import { accessEvent } from '../audit/events.ts';
import type { Config } from '../config/config.ts';
import type { RoleMetrics } from '../http/metrics.ts';
import type { KeyProvider } from '../keys/key-provider.ts';
import type { Logger } from '../shared/logger.ts';
import type { Sql } from '../storage/database.ts';
import { WebhookDispatcher } from './dispatcher.ts';
import { WebhookSecretKey } from './secret-key.ts';
import { Webhooks } from './webhooks.ts';

export interface OpenWebhooks {
  webhooks: Webhooks;
  dispatcher: WebhookDispatcher;
}

/**
 * The api role's webhooks: opens (on a fresh database creates, and records) the key that seals signing
 * secrets, and builds the service behind the routes and the dispatcher. The caller starts the
 * dispatcher and stops it before the pool closes.
 */
export async function openWebhooks(options: {
  sql: Sql;
  provider: KeyProvider;
  trail: AuditTrail;
  config: Config;
  logger: Logger;
  metrics?: RoleMetrics | undefined;
}): Promise<OpenWebhooks> {
  const { sql, provider, trail, config } = options;
  const { key, created } = await WebhookSecretKey.open(sql, provider);
  if (created) {
    await trail.record(
      accessEvent(
        trail.selfAccess,
        'webhook_key.create',
        { type: 'webhook_secret_key', id: `v${key.version}` },
        null,
      ),
    );
  }
  const production = config.mode === 'production';
  const webhooks = new Webhooks({ sql, trail, secretKey: key, production });
  const dispatcher = new WebhookDispatcher({
    sql,
    secretKey: key,
    logger: options.logger,
    metrics: options.metrics,
    settings: {
      retryBaseMs: config.webhookRetryBaseMs,
      retryCapMs: config.webhookRetryCapMs,
      retryHorizonMs: config.webhookRetryHorizonMs,
      pollIntervalMs: config.webhookPollIntervalMs,
      requestTimeoutMs: config.webhookTimeoutMs,
      production,
    },
  });
  options.metrics?.setApiSources({
    pendingWebhookDeliveries: async () => {
      const rows = await sql<{ n: number }[]>`
        select count(*)::int as n from webhooks.deliveries where status in ('pending', 'failed')`;
      return rows[0]?.n ?? 0;
    },
  });
  return { webhooks, dispatcher };
}
