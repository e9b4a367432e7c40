/**
 * Audit verification benchmark: how long `verifyTrail` (what `cardhold audit-log verify` runs) takes over
 * N records, spread over the default 8 lanes, with a signed checkpoint at the end.
 *
 *   npm run bench:audit                      # 1,000,000 records in a fresh database on the external PostgreSQL
 *   BENCH_AUDIT_RECORDS=100000 npm run bench:audit
 *
 * The records are built with the same code the trail uses (canonical encoding, SHA-256 chain) and written
 * in multi-row INSERTs, so loading is not timed as part of verification. The database is dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { openCheckpointSigner } from '../src/audit/audit-keys.ts';
import { recordToRow } from '../src/audit/audit-trail.ts';
import { Checkpointer } from '../src/audit/checkpoints.ts';
import type { AuditRecord } from '../src/audit/events.ts';
import { GENESIS_HASH, recordHash } from '../src/audit/record-hash.ts';
import { verifyTrail } from '../src/audit/verify.ts';
import { LocalKeyProvider } from '../src/keys/local-key-provider.ts';
import { createLogger } from '../src/shared/logger.ts';
import { migrate } from '../src/storage/migrate.ts';

const RECORDS = Number(process.env['BENCH_AUDIT_RECORDS'] ?? 1_000_000);
const LANES = 8;
const BATCH = 2000;
const ADMIN_URL = process.env['BENCH_DATABASE_URL'] || 'postgres://postgres@127.0.0.1:5432/postgres';

const database = `bench_audit_${randomBytes(4).toString('hex')}`;
const root = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
await root.unsafe(`create database ${database}`);
const url = new URL(ADMIN_URL);
url.pathname = `/${database}`;
const sql = postgres(url.toString(), { max: 4, onnotice: () => {} });
const keyDir = await mkdtemp(path.join(tmpdir(), 'cardhold-bench-audit-'));
const logger = createLogger({ level: 'warn' });

try {
  await migrate(sql as never);
  const heads: Array<{ laneSeq: bigint; hash: Buffer }> = Array.from({ length: LANES }, () => ({
    laneSeq: 0n,
    hash: GENESIS_HASH,
  }));
  const started = Date.now();
  const loadStart = performance.now();
  for (let written = 0; written < RECORDS; written += BATCH) {
    const rows = [];
    for (let i = 0; i < Math.min(BATCH, RECORDS - written); i++) {
      const lane = (written + i) % LANES;
      const head = heads[lane] as { laneSeq: bigint; hash: Buffer };
      const record: Omit<AuditRecord, 'hash'> = {
        lane,
        laneSeq: head.laneSeq + 1n,
        occurredAt: new Date(started + written + i),
        actorType: 'merchant_key',
        actorId: 'key_0123456789abcdefghijkl',
        action: 'token.read',
        resourceType: 'token',
        resourceId: `tok_${(written + i).toString(36).padStart(22, '0')}`,
        merchantId: 'mer_0123456789abcdefghijkl',
        outcome: 'success',
        reason: null,
        origin: '10.0.0.17',
        userAgent: 'checkout-service/2.3',
        requestId: `req-${written + i}`,
        service: 'vault',
        details: { brand: 'visa' },
        prevHash: head.hash,
      };
      const hash = recordHash(record);
      heads[lane] = { laneSeq: record.laneSeq, hash };
      rows.push(recordToRow(sql as never, { ...record, hash }));
    }
    await sql`insert into audit.records ${sql(rows)}`;
  }
  const loadSeconds = (performance.now() - loadStart) / 1000;

  const provider = await LocalKeyProvider.open(keyDir);
  const { signer } = await openCheckpointSigner(sql as never, provider);
  const checkpointer = new Checkpointer({
    sql: sql as never,
    signer,
    everyRecords: 1_000_000,
    everySeconds: 3600,
    logger,
    onFailure: (error) => {
      throw error;
    },
  });
  await checkpointer.checkpoint();

  const memoryBefore = process.memoryUsage().rss;
  const verifyStart = performance.now();
  const report = await verifyTrail(sql as never);
  const verifySeconds = (performance.now() - verifyStart) / 1000;
  const rssMb = Math.round(Math.max(process.memoryUsage().rss, memoryBefore) / 1e6);
  if (!report.ok || report.records_checked !== RECORDS) {
    throw new Error(
      `verification did not pass: ${JSON.stringify(report.first_problem)} (${report.records_checked})`,
    );
  }
  const size = await sql<
    { size: string }[]
  >`select pg_size_pretty(pg_total_relation_size('audit.records')) as size`;
  process.stdout.write(
    [
      `Node ${process.version}, ${cpus().length} CPUs, PostgreSQL at ${url.host}`,
      '',
      '| records | lanes | checkpoints | load (s, not timed as verify) | verify (s) | records/s | table size | RSS after verify |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      `| ${RECORDS.toLocaleString('en')} | ${report.lanes_checked} | ${report.checkpoints_checked} | ${loadSeconds.toFixed(1)} | ${verifySeconds.toFixed(1)} | ${Math.round(RECORDS / verifySeconds).toLocaleString('en')} | ${size[0]?.size} | ${rssMb} MB |`,
      '',
    ].join('\n'),
  );
  await provider.close();
} finally {
  await sql.end();
  await root.unsafe(`drop database if exists ${database} with (force)`);
  await root.end();
  await rm(keyDir, { recursive: true, force: true });
}
