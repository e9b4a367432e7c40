import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ServiceRole } from '../keys/local-ca.ts';
import type { Logger } from '../shared/logger.ts';
import { type CspDirective, cspDirectives } from '../web/csp-reports.ts';
import type { TlsMaterial } from './create-server.ts';

/**
 * Critical security controls whose failure PCI DSS 10.7.2 requires to be detected, alerted on and
 * responded to promptly. Each failure is one error-level log event and one increment of
 * `cardhold_control_failures_total{control}`.
 */
export type CriticalControl = 'audit_write' | 'checkpoint_signing' | 'key_provider';
export const criticalControls: readonly CriticalControl[] = [
  'audit_write',
  'checkpoint_signing',
  'key_provider',
];

/** Read at scrape time, vault only. */
export interface VaultMetricSources {
  /** Live CVV slots in the volatile store, all merchants together. */
  liveCvvSlots(): Promise<number>;
  /** Age in seconds of the oldest active key-encrypting key, per purpose that has one. */
  activeKeyAges(): Promise<Array<{ purpose: string; ageSeconds: number }>>;
}

/** Read at scrape time, api only. */
export interface ApiMetricSources {
  /** Webhook deliveries waiting for an attempt (pending, or failed and scheduled), all merchants. */
  pendingWebhookDeliveries(): Promise<number>;
}

/** Scrape-time collectors give up after this long, so a dead dependency never stalls a scrape. */
const COLLECT_TIMEOUT_MS = 2000;

/** Seconds; the vault's hot paths answer in milliseconds, so the low buckets are fine-grained. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type RequestLabels = 'method' | 'route' | 'status';

/**
 * The Prometheus metrics of one role, in a registry of its own (every series carries `role`), served
 * on the role's metrics port by `startMetricsServer`. Labels never carry ids, URLs or card data: HTTP
 * series use the route pattern (`/v1/tokens/:id`), and the other labels are closed sets.
 *
 * Methods for the code that records:
 * - `observeRequest(method, route, status, seconds)`: called by the server factory for every response;
 * - `tokenCreated(count = 1)`: vault routes, per token actually created (not a dedup hit);
 * - `auditRecorded(outcome)`: the audit trail, per record written (`outcome` a short closed word);
 * - `auditWriteFailure(logger?, error?)`: the audit trail, when a record could not be written;
 * - `controlFailure(control, logger?, error?)`: any critical control failing (10.7.2).
 */
export class RoleMetrics {
  readonly role: ServiceRole;
  readonly registry: Registry;
  readonly #logger: Logger;
  readonly #requests: Counter<RequestLabels>;
  readonly #latency: Histogram<RequestLabels>;
  readonly #children = new Map<
    string,
    {
      count: ReturnType<Counter<RequestLabels>['labels']>;
      latency: ReturnType<Histogram<RequestLabels>['labels']>;
    }
  >();
  readonly #controlFailures: Counter<'control'>;
  readonly #auditWriteFailures: Counter;
  readonly #auditRecords: Counter<'outcome'>;
  readonly #tokensCreated: Counter | undefined;
  readonly #cspViolations: Counter<'directive'> | undefined;
  #vault: VaultMetricSources | undefined;
  readonly #webhookDeliveries: Counter<'outcome'> | undefined;
  #api: ApiMetricSources | undefined;

  constructor(role: ServiceRole, logger: Logger) {
    this.role = role;
    this.#logger = logger.child({ role });
    const registry = new Registry();
    registry.setDefaultLabels({ role });
    collectDefaultMetrics({ register: registry, prefix: 'cardhold_' });
    this.registry = registry;
    const registers = [registry];

    this.#requests = new Counter({
      name: 'cardhold_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'cardhold_http_request_duration_seconds',
      help: 'Time from request received to response sent, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#controlFailures = new Counter({
      name: 'cardhold_control_failures_total',
      help: 'Failures of critical security controls (PCI DSS 10.7.2): audit_write, checkpoint_signing, key_provider.',
      labelNames: ['control'],
      registers,
    });
    // Every control starts at 0, so an alert on increase() sees the first failure.
    for (const control of criticalControls) this.#controlFailures.inc({ control }, 0);
    this.#auditWriteFailures = new Counter({
      name: 'cardhold_audit_write_failures_total',
      help: 'Audit records that could not be written.',
      registers,
    });
    this.#auditRecords = new Counter({
      name: 'cardhold_audit_records_total',
      help: 'Audit records written, by outcome of the audited action.',
      labelNames: ['outcome'],
      registers,
    });

    if (role === 'vault') {
      this.#cspViolations = new Counter({
        name: 'cardhold_csp_violations_total',
        help: 'Content security policy violations browsers reported from the card fields page (PCI DSS 11.6.1), by directive.',
        labelNames: ['directive'],
        registers,
      });
      for (const directive of cspDirectives) this.#cspViolations.inc({ directive }, 0);
      this.#tokensCreated = new Counter({
        name: 'cardhold_tokens_created_total',
        help: 'Tokens created (a dedup hit that returns an existing token does not count).',
        registers,
      });
      const self = this;
      new Gauge({
        name: 'cardhold_cvv_slots_live',
        help: 'CVV slots currently held in the volatile store, all merchants.',
        registers,
        async collect() {
          const sources = self.#vault;
          if (!sources) return;
          const live = await self.#collect('cvv_slots_live', () => sources.liveCvvSlots());
          if (live !== undefined) this.set(live);
        },
      });
      new Gauge({
        name: 'cardhold_key_age_seconds',
        help: 'Age of the oldest active key-encrypting key, per purpose (rotation is due when it exceeds the cryptoperiod).',
        labelNames: ['purpose'],
        registers,
        async collect() {
          const sources = self.#vault;
          if (!sources) return;
          const ages = await self.#collect('key_age_seconds', () => sources.activeKeyAges());
          this.reset();
          for (const { purpose, ageSeconds } of ages ?? []) this.set({ purpose }, ageSeconds);
        },
      });
    }

    if (role === 'api') {
      this.#webhookDeliveries = new Counter({
        name: 'cardhold_webhook_deliveries_total',
        help: 'Webhook delivery attempts recorded, by outcome: succeeded, failed (a retry is scheduled), abandoned.',
        labelNames: ['outcome'],
        registers,
      });
      for (const outcome of ['succeeded', 'failed', 'abandoned']) this.#webhookDeliveries.inc({ outcome }, 0);
      const self = this;
      new Gauge({
        name: 'cardhold_webhook_deliveries_pending',
        help: 'Webhook deliveries waiting for an attempt (not yet tried, or failed with a retry scheduled).',
        registers,
        async collect() {
          const sources = self.#api;
          if (!sources) return;
          const pending = await self.#collect('webhook_deliveries_pending', () =>
            sources.pendingWebhookDeliveries(),
          );
          if (pending !== undefined) this.set(pending);
        },
      });
    }
  }

  /** Connects the api gauges to what they read at scrape time. */
  setApiSources(sources: ApiMetricSources): void {
    this.#api = sources;
  }

  /** One webhook attempt recorded: succeeded, failed (retry scheduled) or abandoned (api only). */
  webhookDelivery(outcome: 'succeeded' | 'failed' | 'abandoned'): void {
    this.#webhookDeliveries?.inc({ outcome });
  }

  /** Connects the vault gauges to what they read at scrape time. */
  setVaultSources(sources: VaultMetricSources): void {
    this.#vault = sources;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for one scrape. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** One answered request. `route` must be the route pattern (or `unmatched`), never the URL. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${status} ${route}`;
    let child = this.#children.get(key);
    if (!child) {
      const labels = { method, route, status: String(status) };
      child = {
        count: this.#requests.labels(labels),
        latency: this.#latency.labels(labels),
      };
      this.#children.set(key, child);
    }
    child.count.inc();
    child.latency.observe(seconds);
  }

  /** One violation a browser reported from the card fields page (vault only). */
  cspViolation(directive: CspDirective): void {
    this.#cspViolations?.inc({ directive });
  }

  /** Tokens actually created (vault only; a no-op in other roles). */
  tokenCreated(count = 1): void {
    if (count > 0) this.#tokensCreated?.inc(count);
  }

  /** One audit record written; `outcome` is a short word from a closed set (e.g. `success`, `failure`). */
  auditRecorded(outcome: string): void {
    this.#auditRecords.inc({ outcome });
  }

  /** An audit record could not be written: counts it and reports the `audit_write` control failure. */
  auditWriteFailure(logger?: Logger, error?: unknown): void {
    this.#auditWriteFailures.inc();
    this.controlFailure('audit_write', logger, error);
  }

  /**
   * A critical control failed (PCI DSS 10.7.2): one increment of
   * `cardhold_control_failures_total{control}` and one error-level event
   * `{control, event: 'critical_control_failure'}`. Of the error only its message is logged, through
   * the logger's card-number guard.
   */
  controlFailure(control: CriticalControl, logger: Logger = this.#logger, error?: unknown): void {
    this.#controlFailures.inc({ control });
    const fields: Record<string, unknown> = { control, event: 'critical_control_failure' };
    if (error !== undefined)
      fields['err'] = { message: error instanceof Error ? error.message : String(error) };
    logger.error(fields, `critical control failed: ${control}`);
  }

  async #collect<T>(series: string, read: () => Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), COLLECT_TIMEOUT_MS);
        }),
      ]);
    } catch (error) {
      this.#logger.warn({ series, err: { message: (error as Error).message } }, 'metric not collected');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` for one role over HTTPS (TLS 1.2 minimum, the role's own certificate) on its
 * own port, apart from the API. Everything else is 404.
 */
export async function startMetricsServer(options: {
  metrics: RoleMetrics;
  tls: TlsMaterial;
  host: string;
  port: number;
  logger: Logger;
}): Promise<MetricsServer> {
  const { metrics, logger } = options;
  const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
  const server = createHttpsServer(
    { key: options.tls.key, cert: options.tls.cert, minVersion: 'TLSv1.2', requestTimeout: 10_000 },
    (request, response) => {
      const pathname = (request.url ?? '').split('?', 1)[0];
      if (request.method !== 'GET' || pathname !== '/metrics') {
        response
          .writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' })
          .end('not found\n');
        return;
      }
      metrics.metrics().then(
        (text) => response.writeHead(200, { ...headers, 'content-type': metrics.contentType }).end(text),
        (error: unknown) => {
          logger.warn(
            { role: metrics.role, err: { message: (error as Error).message } },
            'metrics scrape failed',
          );
          response.writeHead(500, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end('error\n');
        },
      );
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = options.host === '0.0.0.0' || options.host === '::' ? 'localhost' : options.host;
  const url = `https://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}/metrics`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
