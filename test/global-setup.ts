import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { scanArtifacts } from './artifact-scan.ts';

export const outputDir = path.resolve('test-output');

const defaults = { postgres: 'postgres://postgres@127.0.0.1:5432/postgres', redis: 'redis://127.0.0.1:6379' };

/**
 * Runs once before every test process: fresh test-output/, and the external PostgreSQL and Redis that
 * the "external" backend uses. With CARDHOLD_TEST_REQUIRE_EXTERNAL=1 (as in CI) their absence fails the
 * run instead of narrowing it to the embedded backend.
 */
export async function globalSetup(): Promise<void> {
  await rm(outputDir, { recursive: true, force: true });
  await mkdir(path.join(outputDir, 'logs'), { recursive: true });
  const pgUrl = process.env['CARDHOLD_TEST_POSTGRES_URL'] ?? defaults.postgres;
  const redisUrl = process.env['CARDHOLD_TEST_REDIS_URL'] ?? defaults.redis;
  const problems: string[] = [];
  const sql = postgres(pgUrl, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
  } catch (error) {
    problems.push(`PostgreSQL at ${new URL(pgUrl).host}: ${(error as Error).message}`);
  } finally {
    await sql.end();
  }
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    problems.push(`Redis at ${new URL(redisUrl).host}: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
  if (problems.length === 0) {
    process.env['CARDHOLD_TEST_POSTGRES_URL'] = pgUrl;
    process.env['CARDHOLD_TEST_REDIS_URL'] = redisUrl;
  } else if (process.env['CARDHOLD_TEST_REQUIRE_EXTERNAL'] === '1') {
    throw new Error(`external services required but unavailable: ${problems.join('; ')}`);
  } else {
    delete process.env['CARDHOLD_TEST_POSTGRES_URL'];
    delete process.env['CARDHOLD_TEST_REDIS_URL'];
    process.stderr.write(`note: external backend not tested (${problems.join('; ')})\n`);
  }
}

/** After the whole suite: no card data in anything the system wrote during the tests. */
export async function globalTeardown(): Promise<void> {
  const { files, findings } = await scanArtifacts(outputDir);
  if (findings.length > 0) {
    process.stderr.write(
      `card data found in test artifacts (${findings.length} findings in ${files} files):\n`,
    );
    for (const f of findings.slice(0, 20))
      process.stderr.write(`  ${f.file}:${f.line} ${f.kind} ${f.sample}\n`);
    process.exitCode = 1;
  } else if (files === 0) {
    // Only unit tests ran (no platform, so no logs or dumps): nothing to scan, which is not a failure.
    // The full run in .ci/run refuses to pass without logs and dumps to scan.
    process.stderr.write('artifact scan: no test in this run wrote logs or dumps; nothing to scan\n');
  }
}
