import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pino from 'pino';
import postgres, { type Sql } from 'postgres';
import { Agent, type Dispatcher, fetch } from 'undici';
import type { AccessContext } from '../src/audit/events.ts';
import { loadConfig } from '../src/config/config.ts';
import { type LocalCa, openLocalCa, type ServiceRole } from '../src/keys/local-ca.ts';
import { developmentLogins, type RunningPlatform, startPlatform } from '../src/platform/platform.ts';
import { createLogger } from '../src/shared/logger.ts';
import { connectAs } from '../src/storage/database-target.ts';

const execFileAsync = promisify(execFile);

export type Backend = 'embedded' | 'external';

/** The embedded defaults always; real PostgreSQL and Redis when the global setup found them. */
export function backends(): Backend[] {
  return process.env['CARDHOLD_TEST_POSTGRES_URL'] ? ['embedded', 'external'] : ['embedded'];
}

export interface HttpResult<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  json: T;
}

type RequestOptions = {
  body?: unknown;
  rawBody?: string;
  key?: string | null;
  headers?: Record<string, string>;
  /** Another undici dispatcher, e.g. one presenting a client certificate. */
  dispatcher?: Dispatcher;
};

type Request = <T = unknown>(method: string, url: string, options?: RequestOptions) => Promise<HttpResult<T>>;

/** What every test platform offers, whichever roles it runs. */
interface TestRoles {
  platform: RunningPlatform;
  dataDir: string;
  /** The test acquirer's URL, when the platform runs that role (else empty). */
  acquirerUrl: string;
  /**
   * An undici Agent that trusts the platform's CA and presents the certificate of
   * spiffe://cardhold/<role>, issued by the platform's local CA or by `issuer` (a foreign CA). Closed
   * with the platform.
   */
  serviceAgent(role: ServiceRole, issuer?: LocalCa): Promise<Agent>;
}

export interface TestPlatform extends TestRoles {
  backend: Backend;
  vaultUrl: string;
  apiUrl: string;
  merchantId: string;
  /** The demo merchant as an internal caller, for calling vault services directly. */
  access: AccessContext;
  secretKey: string;
  adminToken: string;
  /** Superuser connection to the same database, for inspecting raw rows. */
  adminSql: Sql;
  /** Direct client of the external Redis (external backend only). */
  redis: Redis | undefined;
  /** Sends the demo merchant's secret key unless `key` says otherwise (null: no credential). */
  request: Request;
  /** Stops the platform; `keepDataDir` leaves the embedded database for a restart on the same directory. */
  close(options?: { keepDataDir?: boolean }): Promise<void>;
}

/** The test acquirer alone: no database, no demo merchant. */
export interface TestAcquirer extends TestRoles {
  /** Sends no credential unless `key` is given; pass `dispatcher: await serviceAgent('vault')` for mTLS. */
  request: Request;
  close(): Promise<void>;
}

/** Ports picked by the system, a private data directory, verbose logs. */
function baseEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    CARDHOLD_DATA_DIR: dataDir,
    CARDHOLD_VAULT_PORT: '0',
    CARDHOLD_API_PORT: '0',
    CARDHOLD_ACQUIRER_PORT: '0',
    CARDHOLD_VAULT_METRICS_PORT: '0',
    CARDHOLD_API_METRICS_PORT: '0',
    CARDHOLD_ACQUIRER_METRICS_PORT: '0',
    CARDHOLD_DEMO_PORT: '0',
    CARDHOLD_LOG_LEVEL: 'debug',
    CARDHOLD_PURGE_INTERVAL_SECONDS: '3600',
    ...extra,
  };
}

/** A logger writing to test-output/logs, which the global teardown scans for card data. */
function testLogger(name: string, backend: Backend) {
  const logFile = path.resolve(
    'test-output',
    'logs',
    `${name}-${backend}-${process.pid}-${randomBytes(3).toString('hex')}.log`,
  );
  const logger = createLogger({
    level: 'debug',
    destination: pino.destination({ dest: logFile, sync: true, mkdir: true }),
  });
  return { logger, logFile };
}

function requester(agent: Agent, defaultKey: string | null): Request {
  return async <T>(method: string, url: string, opts: RequestOptions = {}): Promise<HttpResult<T>> => {
    const headers: Record<string, string> = { ...opts.headers };
    const key = opts.key === undefined ? defaultKey : opts.key;
    if (key !== null) headers['authorization'] = `Bearer ${key}`;
    let body: string | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const response = await fetch(url, { method, headers, body, dispatcher: opts.dispatcher ?? agent });
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return {
      status: response.status,
      headers: response.headers as unknown as Headers,
      text,
      json: json as T,
    };
  };
}

/** Client-certificate agents for a platform's services; `close` ends every one it made. */
function serviceAgents(dataDir: string, caPem: Buffer) {
  const made: Agent[] = [];
  return {
    async agent(role: ServiceRole, issuer?: LocalCa): Promise<Agent> {
      const issued = await (issuer ?? (await openLocalCa(dataDir))).certificate(role);
      const agent = new Agent({
        connect: { ca: caPem, cert: issued.certPem, key: issued.keyPem },
        keepAliveTimeout: 1000,
      });
      made.push(agent);
      return agent;
    },
    close: () => Promise.all(made.splice(0).map((agent) => agent.close())),
  };
}

/**
 * Starts the test acquirer alone on a random port with a private data directory (its certificate from
 * a local CA there), through the same platform start-up as the full platform. Fast: no database.
 */
export async function startTestAcquirer(
  name: string,
  options: { env?: Record<string, string> } = {},
): Promise<TestAcquirer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cardhold-test-'));
  const config = loadConfig(baseEnv(dataDir, options.env) as Record<string, string>);
  const { logger } = testLogger(name, 'embedded');
  const platform = await startPlatform({ config, roles: ['acquirer'], logger });
  const ca = await readFile(platform.caFile);
  const agent = new Agent({ connect: { ca }, keepAliveTimeout: 1000 });
  const agents = serviceAgents(dataDir, ca);
  return {
    platform,
    dataDir,
    acquirerUrl: platform.urls.acquirer ?? '',
    serviceAgent: agents.agent,
    request: requester(agent, null),
    async close() {
      await platform.close();
      await agents.close();
      await agent.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts vault + api (and optionally the acquirer) on random ports with a private data directory, and
 * a fresh database on the external backend. Logs go to test-output/logs, which the global teardown
 * scans for card data.
 */
export async function startTestPlatform(
  backend: Backend,
  name: string,
  options: {
    roles?: ServiceRole[];
    env?: Record<string, string>;
    dataDir?: string;
    /** Also serve the demo merchant's checkout page (src/web/demo-checkout-server.ts). */
    demoCheckout?: boolean;
  } = {},
): Promise<TestPlatform> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'cardhold-test-')));
  const env = baseEnv(dataDir, options.env);
  let databaseName: string | undefined;
  let dropDatabase: (() => Promise<void>) | undefined;
  if (backend === 'external') {
    const baseUrl = process.env['CARDHOLD_TEST_POSTGRES_URL'] as string;
    databaseName = `cardhold_test_${randomBytes(5).toString('hex')}`;
    const root = postgres(baseUrl, { max: 1, onnotice: () => {} });
    await root.unsafe(`create database ${databaseName}`);
    await root.end();
    const url = new URL(baseUrl);
    url.pathname = `/${databaseName}`;
    env['CARDHOLD_DATABASE_URL'] = url.toString();
    env['CARDHOLD_REDIS_URL'] = process.env['CARDHOLD_TEST_REDIS_URL'];
    dropDatabase = async () => {
      const again = postgres(baseUrl, { max: 1, onnotice: () => {} });
      await again.unsafe(`drop database if exists ${databaseName} with (force)`);
      for (const login of developmentLogins(databaseName as string))
        await again.unsafe(`drop role if exists ${login}`);
      await again.end();
    };
  }
  const config = loadConfig(env as Record<string, string>);
  const { logger, logFile } = testLogger(name, backend);
  const platform = await startPlatform({
    config,
    roles: options.roles ?? ['vault', 'api'],
    logger,
    demo: true,
    demoCheckout: options.demoCheckout ?? false,
  });
  const ca = await readFile(platform.caFile);
  const agent = new Agent({ connect: { ca }, keepAliveTimeout: 1000 });
  const agents = serviceAgents(dataDir, ca);

  const target = platform.services.databaseTarget;
  if (!target) throw new Error('no database target');
  const adminSql =
    backend === 'external'
      ? postgres(env['CARDHOLD_DATABASE_URL'] as string, { max: 2, onnotice: () => {} })
      : connectAs(
          target,
          {
            user: 'cardhold_admin',
            password: (await readFile(path.join(dataDir, 'postgres-admin.secret'), 'utf8')).trim(),
          },
          { applicationName: 'cardhold-test', max: 2 },
        );
  const redis =
    backend === 'external' ? new Redis(process.env['CARDHOLD_TEST_REDIS_URL'] as string) : undefined;
  const adminToken = platform.adminTokenFile ? (await readFile(platform.adminTokenFile, 'utf8')).trim() : '';
  const demo = platform.demo;
  if (!demo) throw new Error('demo merchant missing');

  return {
    backend,
    platform,
    dataDir,
    vaultUrl: platform.urls.vault ?? '',
    apiUrl: platform.urls.api ?? '',
    acquirerUrl: platform.urls.acquirer ?? '',
    serviceAgent: agents.agent,
    merchantId: demo.merchant.id,
    access: {
      merchantId: demo.merchant.id,
      actor: { type: 'service', id: 'test-harness' },
      origin: { origin: 'host:test', userAgent: 'cardhold-test', requestId: 'test-request' },
    },
    secretKey: demo.apiKey.secret.expose(),
    adminToken,
    adminSql,
    redis,
    request: requester(agent, demo.apiKey.secret.expose()),
    async close(closeOptions = {}) {
      await dumpAuditTrail(adminSql, `${path.basename(logFile, '.log')}.jsonl`, [
        demo.apiKey.secret.expose(),
        adminToken,
      ]);
      await platform.close();
      await agents.close();
      await agent.close();
      await adminSql.end();
      redis?.disconnect();
      if (databaseName)
        await dumpDatabase(env['CARDHOLD_DATABASE_URL'] as string, path.basename(logFile, '.log'));
      await dropDatabase?.();
      if (!closeOptions.keepDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Writes a data-only pg_dump of the external test database to test-output/db-dumps/, where CI runs
 * `cardhold discover` over it: the database must hold no card number outside the vault's ciphertext.
 * (The embedded backend is PostgreSQL 18, newer than the machine's pg_dump, so it is not dumped.)
 * Without pg_dump installed the dump is skipped, unless CARDHOLD_TEST_REQUIRE_EXTERNAL=1 as in CI.
 */
export async function dumpDatabase(url: string, name: string): Promise<void> {
  const dir = path.resolve('test-output', 'db-dumps');
  await mkdir(dir, { recursive: true });
  try {
    await execFileAsync(
      'pg_dump',
      ['--data-only', '--no-owner', '--file', path.join(dir, `${name}.sql`), url],
      {
        timeout: 60_000,
      },
    );
  } catch (error) {
    if (
      (error as { code?: string }).code === 'ENOENT' &&
      process.env['CARDHOLD_TEST_REQUIRE_EXTERNAL'] !== '1'
    )
      return;
    throw error;
  }
}

/** Expiry a couple of years ahead, so tests do not age. */
export const futureYear = new Date().getUTCFullYear() + 2;

/**
 * Writes the platform's audit records (without their hashes, which are not data) to test-output/audit,
 * where the global teardown scans them for card data with everything else the system wrote; and fails
 * at once if a known secret or anything shaped like an API key secret is in them.
 */
async function dumpAuditTrail(adminSql: Sql, file: string, secrets: string[]): Promise<void> {
  let rows: readonly unknown[];
  try {
    rows = await adminSql`
    select seq, lane, lane_seq, occurred_at, actor_type, actor_id, action, resource_type, resource_id,
      merchant_id, outcome, reason, origin, user_agent, request_id, service, details
    from audit.records order by seq`;
  } catch (error) {
    // Only a test that stopped the database itself (readiness) gets here; it wrote no card data.
    if (['ENOENT', 'ECONNREFUSED'].includes((error as { code?: string }).code ?? '')) return;
    throw error;
  }
  const text = rows.map((row) => JSON.stringify(row)).join('\n');
  for (const secret of secrets) {
    if (secret && text.includes(secret)) throw new Error(`a secret appears in the audit trail (${file})`);
  }
  if (/(sk|pk)_(test|live)_[0-9A-Za-z]{43}|adm_[A-Za-z0-9_-]{43}/.test(text)) {
    throw new Error(`something shaped like a credential appears in the audit trail (${file})`);
  }
  const dir = path.resolve('test-output', 'audit');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, file), `${text}\n`);
}
