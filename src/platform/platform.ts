import { constants } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Server as HttpsServer } from 'node:https';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import { Redis } from 'ioredis';
import type { Connector } from '../acquirers/connector.ts';
import { parseConnectorSpecs, parseRoutingRules, Router } from '../acquirers/routing.ts';
import { acquirerClientIdentity, createTestAcquirer } from '../acquirers/test-acquirer.ts';
import { TestAcquirerConnector } from '../acquirers/test-acquirer-connector.ts';
import { type OpenAudit, openAudit, recordKeyCreation } from '../audit/open-audit.ts';
import { registerAuditRoutes } from '../audit/routes.ts';
import { registerAdminRoutes } from '../auth/admin-routes.ts';
import { ApiKeyVerifier, type IssuedApiKey, newAdminToken } from '../auth/api-keys.ts';
import { Authorizer } from '../auth/authenticate.ts';
import { bearerTokenAuthenticator } from '../auth/bearer-tokens.ts';
import { ClientTrust } from '../auth/client-trust.ts';
import { Merchants, type MerchantView } from '../auth/merchants.ts';
import { oidcAuthenticator } from '../auth/oidc-principal.ts';
import { registerOperatorRoutes } from '../auth/operator-routes.ts';
import { Operators } from '../auth/operators/operators.ts';
import { SessionVerifier } from '../auth/operators/session-verifier.ts';
import { type Config, ConfigError } from '../config/config.ts';
import { type AppInstance, createServer, type TlsMaterial } from '../http/create-server.ts';
import { registerHealth } from '../http/health.ts';
import { RoleMetrics, startMetricsServer } from '../http/metrics.ts';
import { startControlSocket } from '../keys/control-socket.ts';
import { KeyHierarchy } from '../keys/key-hierarchy.ts';
import { isSealable, type KeyProvider } from '../keys/key-provider.ts';
import { registerKeyRoutes } from '../keys/key-routes.ts';
import { cryptoperiodsOf } from '../keys/key-status.ts';
import type { ServiceRole } from '../keys/local-ca.ts';
import { openKeyProvider } from '../keys/open-key-provider.ts';
import { registerSealRoutes } from '../keys/seal-routes.ts';
import { Unsealer } from '../keys/unsealer.ts';
import { Idempotency } from '../payments/idempotency.ts';
import { type EventSink, PaymentService } from '../payments/payment-service.ts';
import { Reconciler } from '../payments/reconciler.ts';
import { registerPaymentRoutes } from '../payments/routes.ts';
import { VAULT_ANSWER_TIMEOUT_MS, VaultClient } from '../payments/vault-client.ts';
import { CardholdError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { Secret } from '../shared/secret.ts';
import { ping, type Sql } from '../storage/database.ts';
import { type Credentials, connectAs, type DatabaseTarget } from '../storage/database-target.ts';
import { startEmbeddedPostgres } from '../storage/embedded-postgres.ts';
import { MemoryVolatileStore } from '../storage/memory-volatile-store.ts';
import { migrate } from '../storage/migrate.ts';
import { RedisVolatileStore } from '../storage/redis-volatile-store.ts';
import { ensureRuntimeLogin } from '../storage/runtime-logins.ts';
import type { VolatileStore } from '../storage/volatile-store.ts';
import { CvvSlots } from '../vault/cvv-slots.ts';
import { ForwardProxy } from '../vault/forward-proxy.ts';
import { registerForwardRoutes } from '../vault/forward-routes.ts';
import { MerchantFreezes } from '../vault/merchant-freezes.ts';
import { registerVaultRoutes } from '../vault/routes.ts';
import { TokenService } from '../vault/token-service.ts';
import { allowDashboardOrigin, originOfUrl } from '../web/dashboard-cors.ts';
import { registerDashboardRoutes } from '../web/dashboard-routes.ts';
import { startDemoCheckout } from '../web/demo-checkout-server.ts';
import { registerHostedFieldsRoutes } from '../web/hosted-fields-routes.ts';
import { type OpenWebhooks, openWebhooks } from '../webhooks/open-webhooks.ts';
import { enqueueEvents } from '../webhooks/outbox.ts';
import { registerWebhookRoutes } from '../webhooks/routes.ts';
import { openTlsSource, type TlsSource } from './tls.ts';
import { version } from './version.ts';

export interface PlatformOptions {
  config: Config;
  roles: readonly ServiceRole[];
  logger: Logger;
  /** Create (or re-key) the development demo merchant. */
  demo?: boolean;
  /** Serve the demo merchant's checkout page on its own origin (development, with `demo`; issue 10). */
  demoCheckout?: boolean;
}

export interface RunningPlatform {
  urls: Partial<Record<ServiceRole, string>>;
  /** Each role's Prometheus endpoint (`https://host:port/metrics`), on its own port. */
  metricsUrls: Partial<Record<ServiceRole, string>>;
  caFile: string;
  adminTokenFile: string | undefined;
  demo: { merchant: MerchantView; apiKey: IssuedApiKey } | undefined;
  /** The demo merchant's checkout page, when `demoCheckout` asked for it. */
  demoCheckoutUrl?: string | undefined;
  /** Exposed for tests and tools that need to reach the same services. */
  services: {
    vault?: VaultServices;
    apiSql?: Sql;
    apiAudit?: OpenAudit;
    operators?: Operators;
    /** Each started role's server, for tests that walk the route table. */
    apps?: Partial<Record<ServiceRole, AppInstance>>;
    databaseTarget?: DatabaseTarget;
    /** Each started role's metrics, for the code that records (audit trail, …) and for tests. */
    metrics: Partial<Record<ServiceRole, RoleMetrics>>;
    /** Payments in the api, and the reconciler that settles unknown attempts (tests run it on demand). */
    payments?: PaymentService;
    reconciler?: Reconciler;
    /** The embedded PostgreSQL, when this platform started one: tests stop it to see readiness fail. */
    embeddedDatabase?: { stop(): Promise<void> };
    /** The api role's webhook service and its running dispatcher. */
    webhooks?: OpenWebhooks;
  };
  close(): Promise<void>;
}

export interface VaultServices {
  sql: Sql;
  tokens: TokenService;
  cvvSlots: CvvSlots;
  keys: KeyHierarchy;
  volatile: VolatileStore;
  audit: OpenAudit;
  forward: ForwardProxy;
}

/**
 * Starts the requested roles with everything they depend on, in dependency order, and returns a handle
 * that stops them in reverse order: servers drain first, then pools, stores, keys and the embedded
 * database. Any failure during start-up undoes what had started.
 */
export async function startPlatform(options: PlatformOptions): Promise<RunningPlatform> {
  const { config, logger, roles } = options;
  const closers: Array<{ name: string; close: () => Promise<unknown> }> = [];
  const closeAll = async () => {
    for (const { name, close } of closers.splice(0).reverse()) {
      await close().catch((error: unknown) =>
        logger.warn({ err: { message: String(error) }, step: name }, 'shutdown step failed'),
      );
    }
  };

  try {
    const needsVault = roles.includes('vault');
    const needsApi = roles.includes('api');
    const dev = config.mode === 'development';
    // One metrics registry per role, so the same series from two roles in one process never mix.
    const metrics: RunningPlatform['services']['metrics'] = {};
    for (const role of roles) metrics[role] = new RoleMetrics(role, logger);
    const services: RunningPlatform['services'] = { metrics };

    // Database: external by URL, or the embedded server in development.
    let target: DatabaseTarget | undefined;
    let adminCredentials: Credentials | undefined;
    if (needsVault || needsApi) {
      if (config.databaseUrl) {
        target = { kind: 'url', url: config.databaseUrl.expose() };
      } else if (dev && !(config.vaultDatabaseUrl || config.apiDatabaseUrl)) {
        const embedded = await startEmbeddedPostgres(config.dataDir, logger);
        closers.push({ name: 'embedded postgres', close: () => embedded.stop() });
        services.embeddedDatabase = { stop: () => embedded.stop() };
        target = embedded.target;
        adminCredentials = { user: embedded.adminUser, password: embedded.adminPassword };
      }
      services.databaseTarget = target;
    }

    // In development the platform holds the admin connection: it migrates and mints per-role logins.
    let admin: Sql | undefined;
    if (dev && target) {
      admin = connectAs(target, adminCredentials, { applicationName: 'cardhold-admin', max: 1, logger });
      closers.push({ name: 'admin pool', close: () => admin!.end({ timeout: 5 }) });
      const result = await migrate(admin);
      if (result.applied.length > 0)
        logger.info({ applied: result.applied.map((m) => m.name) }, 'migrations applied');
    }
    const rolePool = async (
      role: 'vault' | 'api',
      url: Secret<string> | undefined,
      setting: string,
    ): Promise<Sql> => {
      let sql: Sql;
      if (url)
        sql = connectAs({ kind: 'url', url: url.expose() }, undefined, {
          applicationName: `cardhold-${role}`,
          max: config.databasePoolSize,
          logger,
        });
      else if (admin && target) {
        const credentials = await ensureRuntimeLogin(admin, loginPrefix(target), role);
        sql = connectAs(target, credentials, {
          applicationName: `cardhold-${role}`,
          max: config.databasePoolSize,
          logger,
        });
      } else throw new ConfigError(setting, `is required to run the ${role} role in ${config.mode} mode`);
      closers.push({ name: `${role} pool`, close: () => sql.end({ timeout: config.shutdownGraceSeconds }) });
      await ping(sql);
      return sql;
    };

    // One key provider per process, shared by its roles: one HSM session, one unseal for all of them.
    let sharedProvider: KeyProvider | undefined;
    const keyProvider = async (): Promise<KeyProvider> => {
      if (!sharedProvider) {
        const provider = await openKeyProvider(config, logger);
        closers.push({ name: 'key provider', close: () => provider.close() });
        sharedProvider = provider;
        if (provider.sealed) {
          logger.warn(
            { keyProvider: provider.name },
            'the key provider is SEALED: no card data until custodians submit their shares (cardhold keys unseal)',
          );
        }
      }
      return sharedProvider;
    };
    const sealHandlers: Array<() => void> = [];
    let unsealer: Unsealer | undefined;
    const sealControls = async (provider: KeyProvider, trail: OpenAudit['trail']): Promise<Unsealer> => {
      if (unsealer) return unsealer;
      const created = new Unsealer({
        provider,
        trail,
        onSealed: () => {
          for (const handler of sealHandlers) handler();
        },
      });
      unsealer = created;
      if (isSealable(provider)) {
        provider.onSealChange((sealed) =>
          logger.warn({ sealed }, sealed ? 'key provider sealed' : 'key provider unsealed'),
        );
        const socket = await startControlSocket({
          dataDir: config.dataDir,
          name: roles.join('+'),
          unsealer: created,
          origin: trail.selfOrigin,
        });
        closers.push({ name: 'key control socket', close: () => socket.close() });
      }
      return created;
    };

    const tls = await openTlsSource(config);
    // Filled in as each role listens; the api and the forward proxy read them lazily in one process.
    const urls: RunningPlatform['urls'] = {};
    const oidc = oidcAuthenticator(config);
    const apps: Array<{ role: ServiceRole; app: AppInstance; port: number }> = [];
    // Clients that present a role's certificate (forward proxy, api → vault) take rotated material too.
    const tlsListeners: Record<ServiceRole, Array<(material: TlsMaterial) => void>> = {
      vault: [],
      api: [],
      acquirer: [],
    };
    // Client certificates are checked against the CA bundle as reloaded, not only at the handshake.
    const clientTrust = new ClientTrust((await tls.material(roles[0] as ServiceRole)).ca);
    for (const role of roles) tlsListeners[role].push((material) => clientTrust.update(material.ca));
    // Rate-limit counters shared by replicas, in the same Redis as the CVV store.
    let rateLimitRedis: Redis | undefined;
    if (config.redisUrl && needsVault) {
      const client = new Redis(config.redisUrl.expose(), { maxRetriesPerRequest: 1, lazyConnect: false });
      client.on('error', (error: Error) =>
        logger.warn({ err: { message: error.message } }, 'rate-limit redis'),
      );
      rateLimitRedis = client;
      closers.push({ name: 'rate-limit redis', close: () => client.quit() });
    }
    const serverOptions = async (role: ServiceRole, authorizer: Authorizer) => ({
      authorizer,
      rateLimitRedis: role === 'vault' ? rateLimitRedis : undefined,
      role,
      logger,
      tls: await tls.material(role),
      bodyLimit: config.bodyLimitBytes,
      version,
      metrics: metrics[role],
    });

    if (needsVault) {
      const sql = await rolePool('vault', config.vaultDatabaseUrl, 'CARDHOLD_VAULT_DATABASE_URL');
      const provider = await keyProvider();
      const keyProviderFailed = (error: unknown) =>
        metrics.vault?.controlFailure('key_provider', logger.child({ role: 'vault' }), error);
      const audit = await openAudit({
        sql,
        provider,
        service: 'vault',
        config,
        logger,
        metrics: metrics.vault,
        signCheckpoints: true,
      });
      closers.push({ name: 'vault audit trail', close: () => audit.close() });
      const trail = audit.trail;
      const keys = new KeyHierarchy(sql, provider, {
        onProviderFailure: keyProviderFailed,
        onKeyCreated: recordKeyCreation(trail, sql),
      });
      closers.push({ name: 'key cache', close: async () => keys.forget() });
      sealHandlers.push(() => keys.forget());
      // Unwrapped keys are cached so that the provider is not asked per card; without a check of its own
      // the vault would notice a provider gone only when a key expired from the cache.
      let checking = false;
      const providerCheck = setInterval(() => {
        if (checking || provider.sealed) return;
        checking = true;
        keys
          .checkProvider()
          .catch(() => undefined)
          .finally(() => {
            checking = false;
          });
      }, config.keyProviderCheckSeconds * 1000);
      providerCheck.unref();
      closers.push({ name: 'key provider check', close: async () => clearInterval(providerCheck) });
      const vaultUnsealer = await sealControls(provider, trail);
      const volatile = await openVolatileStore(config, logger);
      closers.push({ name: 'volatile store', close: () => volatile.close() });
      const cvvSlots = new CvvSlots(
        volatile,
        keys,
        { ttlSeconds: config.cvvTtlSeconds, maxUses: config.cvvMaxUses },
        trail,
      );
      const freezes = new MerchantFreezes(sql, config.apiKeyCacheSeconds);
      const tokens = new TokenService({ sql, keys, cvvSlots, trail, freezes });
      const vaultTls = await tls.material('vault');
      const forward = new ForwardProxy({
        tokens,
        cvvSlots,
        trail,
        logger: logger.child({ role: 'vault' }),
        allowlist: (config.forwardAllowlist ?? '')
          .split(',')
          .map((entry) => entry.trim())
          .filter(Boolean),
        timeoutMs: config.forwardTimeoutMs,
        clientTls: vaultTls,
        extraCa: config.forwardCaFile ? await readFile(config.forwardCaFile) : undefined,
      });
      closers.push({ name: 'forward proxy', close: () => forward.close() });
      tlsListeners.vault.push((material) => forward.useTls(material));
      // Operator sessions the api issued: verified with their public keys, under migration 005's grants.
      const operatorSessions = await SessionVerifier.open({ sql, trail, environment: provider.environment });
      services.vault = { sql, tokens, cvvSlots, keys, volatile, audit, forward };
      metrics.vault?.setVaultSources({
        liveCvvSlots: () => cvvSlots.countLive(),
        activeKeyAges: () => keys.activeKeyAges(),
      });

      const vaultApiKeys = new ApiKeyVerifier(sql, config.apiKeyCacheSeconds);
      const app = await createServer({
        ...(await serverOptions(
          'vault',
          new Authorizer({
            trail,
            apiKeys: vaultApiKeys,
            services: { 'spiffe://cardhold/api': 'service-api' },
            clientTrust,
            bearerTokens: bearerTokenAuthenticator({ operators: operatorSessions, oidc }),
          }),
        )),
        title: 'cardhold vault',
        description: 'The cardholder data environment: tokenization, CVV slots and card data lifecycle.',
      });
      registerHealth(app, {
        database: () => ping(sql),
        volatile_store: () => volatile.check(),
        // Reports the failure and drops the key cache, like the periodic check.
        key_provider: () => keys.checkProvider(),
      });
      // Fail closed while sealed: every route that is not public or a seal control answers 503.
      app.addHook('preHandler', async (request) => {
        const access = (request.routeOptions.config as { access?: string }).access;
        if (provider.sealed && access !== 'public' && !request.url.startsWith('/v1/keys/')) {
          throw new CardholdError('key_provider_sealed');
        }
      });
      registerSealRoutes(app, vaultUnsealer);
      registerVaultRoutes(app, {
        tokens,
        cvvSlots,
        trail,
        tokenizePerMinute: config.rateLimitTokenizePerMinute,
        metrics: metrics.vault,
      });
      registerForwardRoutes(app, { proxy: forward, cvvSlots, trail });
      registerHostedFieldsRoutes(app, {
        apiKeys: vaultApiKeys,
        trail,
        logger: logger.child({ role: 'vault' }),
        metrics: metrics.vault,
      });
      // Operator dashboard (issue 10): key views, and CORS for the dashboard's origin on its routes only.
      registerKeyRoutes(app, {
        sql,
        provider,
        trail,
        periods: cryptoperiodsOf(config),
        certificateDir: config.tlsDir ?? path.join(config.dataDir, 'tls'),
      });
      allowDashboardOrigin(app, () => originOfUrl(config.dashboardOrigin ?? urls.api));
      apps.push({ role: 'vault', app, port: config.vaultPort });

      const purge = setInterval(() => {
        tokens
          .purgeExpired()
          .then((n) => n > 0 && logger.info({ purged: n }, 'expired tokens deleted'))
          .catch((error: unknown) => logger.error({ err: { message: String(error) } }, 'token purge failed'));
      }, config.purgeIntervalSeconds * 1000);
      purge.unref();
      closers.push({ name: 'purge job', close: async () => clearInterval(purge) });
    }

    let adminTokenFile: string | undefined;
    let demo: RunningPlatform['demo'];
    let issueDemoPublishableKey: ((origin: string) => Promise<string>) | undefined;
    if (needsApi) {
      const sql = await rolePool('api', config.apiDatabaseUrl, 'CARDHOLD_API_DATABASE_URL');
      services.apiSql = sql;
      // The api holds the key provider only to open the audit trail's keyed-hash key; the vault signs
      // the checkpoints that cover the api's records too.
      const provider = await keyProvider();
      const audit = await openAudit({
        sql,
        provider,
        service: 'api',
        config,
        logger,
        metrics: metrics.api,
        signCheckpoints: false,
      });
      closers.push({ name: 'api audit trail', close: () => audit.close() });
      services.apiAudit = audit;
      const merchants = new Merchants(sql, audit.trail);
      if (provider.sealed) {
        // Operators need the TOTP and session keys: the api starts once custodians unseal on this host.
        await sealControls(provider, audit.trail);
        logger.warn('the api role waits for the key provider to be unsealed (cardhold keys unseal)');
        await (isSealable(provider) ? provider.whenUnsealed() : Promise.resolve());
      }
      const operators = await Operators.open({ sql, trail: audit.trail, provider, logger });
      closers.push({ name: 'operators', close: async () => operators.close() });
      let adminToken = config.adminToken;
      if (!adminToken && dev) {
        adminTokenFile = path.join(config.dataDir, 'admin-token');
        adminToken = new Secret(await developmentAdminToken(adminTokenFile));
      }
      const app = await createServer({
        ...(await serverOptions(
          'api',
          new Authorizer({
            trail: audit.trail,
            adminToken,
            // Merchants' secret keys, for payments, refunds and webhooks.
            apiKeys: new ApiKeyVerifier(sql, config.apiKeyCacheSeconds),
            bearerTokens: bearerTokenAuthenticator({ operators, oidc }),
          }),
        )),
        title: 'cardhold api',
        description: 'Merchants, API keys and (soon) payments. Never sees a card number.',
      });
      registerHealth(app, { database: () => ping(sql) });
      registerAdminRoutes(app, {
        merchants,
        environment: dev ? 'test' : 'live',
      });
      registerAuditRoutes(app, { sql, trail: audit.trail });
      const payments = await startPayments({ config, sql, logger, tls, urls, tlsListeners, closers });
      registerPaymentRoutes(app, payments);
      services.payments = payments.payments;
      services.reconciler = payments.reconciler;
      registerOperatorRoutes(app, { operators, authPerMinute: config.rateLimitSignInPerMinute });
      services.operators = operators;
      // Webhooks: the dispatcher polls the outbox from now on and stops, before the pool closes.
      const webhooks = await openWebhooks({
        sql,
        provider,
        trail: audit.trail,
        config,
        logger,
        metrics: metrics.api,
      });
      registerWebhookRoutes(app, { webhooks: webhooks.webhooks });
      registerDashboardRoutes(app, {
        vaultOrigin: () => originOfUrl(config.dashboardVaultUrl ?? config.vaultUrl ?? urls.vault),
        scanReportFile: config.scanReportFile,
        trail: audit.trail,
        oidc: config.oidcDashboardClientId
          ? {
              authorizationEndpoint: config.oidcAuthorizationEndpoint as string,
              tokenEndpoint: config.oidcTokenEndpoint as string,
              clientId: config.oidcDashboardClientId,
              scope: config.oidcDashboardScope,
              audience: config.oidcAudience as string,
            }
          : undefined,
      });
      webhooks.dispatcher.start();
      closers.push({ name: 'webhook dispatcher', close: () => webhooks.dispatcher.stop() });
      services.webhooks = webhooks;
      apps.push({ role: 'api', app, port: config.apiPort });
      if (options.demo && dev) {
        const created = await merchants.demo(audit.trail.selfAccess);
        demo = created;
        issueDemoPublishableKey = async (origin) => {
          const key = await merchants.issueKey(audit.trail.selfAccess, created.merchant.id, {
            kind: 'publishable',
            allowedOrigins: [origin],
            label: 'demo checkout',
          });
          return key.secret.expose();
        };
      }
    }

    if (roles.includes('acquirer')) {
      const app = await createTestAcquirer({
        ...(await serverOptions(
          'acquirer',
          new Authorizer({ services: { [acquirerClientIdentity]: 'service-vault' }, clientTrust }),
        )),
        hangMs: config.acquirerHangMs,
        latency: { maxMs: config.acquirerLatencyMs, seed: config.acquirerLatencySeed },
      });
      apps.push({ role: 'acquirer', app, port: config.acquirerPort });
    }

    // Metrics servers start before, and so stop after, the role servers: scrapes work during the drain.
    const metricsUrls: RunningPlatform['metricsUrls'] = {};
    const metricsPorts = {
      vault: config.vaultMetricsPort,
      api: config.apiMetricsPort,
      acquirer: config.acquirerMetricsPort,
    };
    for (const { role } of apps) {
      const server = await startMetricsServer({
        metrics: metrics[role]!,
        tls: await tls.material(role),
        host: config.metricsHost ?? config.host,
        port: metricsPorts[role],
        logger,
      });
      closers.push({ name: `${role} metrics server`, close: () => server.close() });
      metricsUrls[role] = server.url;
      logger.info({ role, url: server.url }, 'metrics listening');
    }

    services.apps = Object.fromEntries(apps.map(({ role, app }) => [role, app]));
    for (const { role, app, port } of apps) {
      const stopWatching = tls.watch(
        role,
        (material) => {
          const context = {
            key: material.key,
            cert: material.cert,
            ca: material.ca,
            minVersion: 'TLSv1.2',
            secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
          } as const;
          // Checked whole before anything changes (a key that does not match its certificate, a bundle
          // that does not parse): files that cannot be applied leave the server, its clients and the
          // client trust as they were.
          createSecureContext(context);
          new ClientTrust(material.ca);
          (app.server as unknown as HttpsServer).setSecureContext(context);
          for (const listener of tlsListeners[role]) listener(material);
          logger.info({ role }, 'TLS certificate and CA bundle reloaded');
        },
        (error) => logger.error({ role, err: { message: String(error) } }, 'TLS reload failed'),
      );
      closers.push({ name: `${role} TLS watch`, close: async () => stopWatching() });
      closers.push({
        name: `${role} server`,
        close: () => closeWithin(app, config.shutdownGraceSeconds * 1000),
      });
      await app.listen({ host: config.host, port });
      const address = app.server.address();
      const boundPort = typeof address === 'object' && address ? address.port : port;
      const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
      urls[role] = `https://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${boundPort}`;
      logger.info({ role, url: urls[role] }, 'listening');
    }

    // In development the test acquirer in this process is a processor the vault may forward to.
    if (dev && urls.acquirer && services.vault) services.vault.forward.allow(urls.acquirer);

    // The demo merchant's shop on its own origin, paying through the api with the hosted fields' tokens.
    let demoCheckoutUrl: string | undefined;
    if (options.demoCheckout && dev && demo && issueDemoPublishableKey && urls.vault && urls.api) {
      const checkout = await startDemoCheckout({
        host: config.host,
        port: config.demoPort,
        tls: await tls.material('api'),
        vaultUrl: urls.vault,
        apiUrl: urls.api,
        secretKey: demo.apiKey.secret,
        issuePublishableKey: issueDemoPublishableKey,
        logger,
      });
      closers.push({ name: 'demo checkout', close: () => checkout.close() });
      demoCheckoutUrl = checkout.url;
    }

    return {
      urls,
      metricsUrls,
      caFile: tls.caFile,
      adminTokenFile,
      demo,
      demoCheckoutUrl,
      services,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function openVolatileStore(config: Config, logger: Logger): Promise<VolatileStore> {
  if (config.redisUrl) {
    const store = new RedisVolatileStore(config.redisUrl.expose(), logger);
    try {
      await store.ready();
    } catch (error) {
      await store.close();
      throw new ConfigError('CARDHOLD_REDIS_URL', `Redis is not reachable (${(error as Error).message})`);
    }
    return store;
  }
  if (config.mode === 'production') {
    throw new ConfigError(
      'CARDHOLD_REDIS_URL',
      'is required in production mode (the in-process store is development-only)',
    );
  }
  return new MemoryVolatileStore();
}

async function developmentAdminToken(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const token = newAdminToken();
    await writeFile(file, token + '\n', { mode: 0o600 });
    return token;
  }
}

/** Login names are cluster-wide; prefix them with the database so two cardhold databases never share one. */
function loginPrefix(target: DatabaseTarget): string {
  const database =
    target.kind === 'socket' ? target.database : new URL(target.url).pathname.slice(1) || 'postgres';
  return loginPrefixOf(database);
}

/** The prefix of the per-role logins the platform mints in development for `database`. */
export function loginPrefixOf(database: string): string {
  return `ch_${database.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 40);
}

/** Those logins themselves: whoever drops a development database drops them too (they outlive it). */
export const developmentLogins = (database: string): string[] =>
  ['vault', 'api'].map((role) => `${loginPrefixOf(database)}_${role}`);

async function closeWithin(app: AppInstance, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    app.close(),
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        app.server.closeAllConnections?.();
        resolve();
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Payments in the api role: the client of the vault (mTLS as spiffe://cardhold/api), the connectors
 * and their routing, idempotency, and the reconciler that settles unknown attempts on a timer.
 */
async function startPayments(options: {
  config: Config;
  sql: Sql;
  logger: Logger;
  tls: TlsSource;
  urls: RunningPlatform['urls'];
  tlsListeners: Record<ServiceRole, Array<(material: TlsMaterial) => void>>;
  closers: Array<{ name: string; close: () => Promise<unknown> }>;
}): Promise<{ payments: PaymentService; idempotency: Idempotency; reconciler: Reconciler }> {
  const { config, sql, logger, urls, closers } = options;
  const inProcess = (role: ServiceRole, setting: string) => () => {
    const url = urls[role];
    if (!url) throw new ConfigError(setting, `is required when the ${role} role runs in another process`);
    return url;
  };
  const vault = new VaultClient(
    config.vaultUrl ?? inProcess('vault', 'CARDHOLD_VAULT_URL'),
    await options.tls.material('api'),
  );
  closers.push({ name: 'vault client', close: () => vault.close() });
  options.tlsListeners.api.push((material) => vault.useTls(material));
  const specs = config.connectors
    ? parseConnectorSpecs(config.connectors)
    : [{ name: 'test-acquirer', type: 'test-acquirer' as const }];
  const connectors: Connector[] = specs.map(
    (spec) =>
      new TestAcquirerConnector({
        name: spec.name,
        url: spec.url || inProcess('acquirer', 'CARDHOLD_CONNECTORS'),
        vault,
        restrict: spec.restrict,
      }),
  );
  const router = new Router(
    connectors,
    parseRoutingRules(
      config.routingRules,
      connectors.map((c) => c.name),
    ),
  );
  // Payment events go to the webhook outbox in the transaction that changes the payment.
  const events: EventSink = (tx, batch) => enqueueEvents(tx, batch);
  const apiLogger = logger.child({ role: 'api' });
  const payments = new PaymentService({ sql, vault, router, events, logger: apiLogger });
  const idempotency = new Idempotency(sql);
  const reconciler = new Reconciler({ payments, vault, logger: apiLogger });
  // An attempt is only treated as lost once a forwarded request could no longer be answering: once the
  // api has surely stopped waiting for the vault's answer (and the vault for the processor's).
  const settleAfterMs = Math.max(config.forwardTimeoutMs * 2, VAULT_ANSWER_TIMEOUT_MS + 10_000);
  const timer = setInterval(() => {
    reconciler
      .runOnce(settleAfterMs)
      .then(() => idempotency.purge())
      .catch((error: unknown) =>
        apiLogger.error({ err: { message: String(error) } }, 'reconciliation failed'),
      );
  }, config.reconcileIntervalSeconds * 1000);
  timer.unref();
  closers.push({ name: 'reconciler', close: async () => clearInterval(timer) });
  return { payments, idempotency, reconciler };
}
