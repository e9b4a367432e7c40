import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import postgres, { type Sql } from 'postgres';
import { Agent, fetch } from 'undici';
import { loadConfig } from '../src/config/config.ts';
import type { ServiceRole } from '../src/keys/local-ca.ts';
import { type RunningPlatform, startPlatform } from '../src/platform/platform.ts';
import { createLogger } from '../src/shared/logger.ts';
import { connectAs } from '../src/storage/database-target.ts';

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

export interface TestPlatform {
  backend: Backend;
  platform: RunningPlatform;
  dataDir: string;
  vaultUrl: string;
  apiUrl: string;
  merchantId: string;
  secretKey: string;
  adminToken: string;
  /** Superuser connection to the same database, for inspecting raw rows. */
  adminSql: Sql;
  /** Direct client of the external Redis (external backend only). */
  redis: Redis | undefined;
  request<T = unknown>(
    method: string,
    url: string,
    options?: { body?: unknown; rawBody?: string; key?: string | null; headers?: Record<string, string> },
  ): Promise<HttpResult<T>>;
  close(): Promise<void>;
}

/**
 * Starts vault + api (and optionally the acquirer) on random ports with a private data directory, and
 * a fresh database on the external backend. Logs go to test-output/logs, which the global teardown
 * scans for card data.
 */
export async function startTestPlatform(
  backend: Backend,
  name: string,
  options: { roles?: ServiceRole[]; env?: Record<string, string> } = {},
): Promise<TestPlatform> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cardhold-test-'));
  const env: Record<string, string | undefined> = {
    CARDHOLD_DATA_DIR: dataDir,
    CARDHOLD_VAULT_PORT: '0',
    CARDHOLD_API_PORT: '0',
    CARDHOLD_ACQUIRER_PORT: '0',
    CARDHOLD_LOG_LEVEL: 'debug',
    CARDHOLD_PURGE_INTERVAL_SECONDS: '3600',
    ...options.env,
  };
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
      await again.end();
    };
  }
  const config = loadConfig(env as Record<string, string>);
  const logFile = path.resolve(
    'test-output',
    'logs',
    `${name}-${backend}-${process.pid}-${randomBytes(3).toString('hex')}.log`,
  );
  const logger = createLogger({
    level: 'debug',
    destination: pino.destination({ dest: logFile, sync: true, mkdir: true }),
  });
  const platform = await startPlatform({
    config,
    roles: options.roles ?? ['vault', 'api'],
    logger,
    demo: true,
  });
  const ca = await readFile(platform.caFile);
  const agent = new Agent({ connect: { ca }, keepAliveTimeout: 1000 });

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
    merchantId: demo.merchant.id,
    secretKey: demo.apiKey.secret.expose(),
    adminToken,
    adminSql,
    redis,
    async request<T>(
      method: string,
      url: string,
      opts: { body?: unknown; rawBody?: string; key?: string | null; headers?: Record<string, string> } = {},
    ): Promise<HttpResult<T>> {
      const headers: Record<string, string> = { ...opts.headers };
      const key = opts.key === undefined ? demo.apiKey.secret.expose() : opts.key;
      if (key !== null) headers['authorization'] = `Bearer ${key}`;
      let body: string | undefined;
      if (opts.rawBody !== undefined) body = opts.rawBody;
      else if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const response = await fetch(url, { method, headers, body, dispatcher: agent });
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
    },
    async close() {
      await platform.close();
      await agent.close();
      await adminSql.end();
      redis?.disconnect();
      await dropDatabase?.();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Expiry a couple of years ahead, so tests do not age. */
export const futureYear = new Date().getUTCFullYear() + 2;
