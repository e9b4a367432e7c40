import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Config, ConfigError } from '../config/config.ts';
import type { Logger } from '../shared/logger.ts';
import { ping, type Sql } from '../storage/database.ts';
import { connectAs } from '../storage/database-target.ts';
import {
  EMBEDDED_ADMIN_USER,
  EMBEDDED_DATABASE,
  EMBEDDED_SOCKET_PORT,
  startEmbeddedPostgres,
} from '../storage/embedded-postgres.ts';

export interface AdminDatabase {
  sql: Sql;
  close(): Promise<void>;
}

/**
 * An administrative connection for CLI commands: CARDHOLD_DATABASE_URL, or in development the embedded
 * database, reached on its socket when a running cardhold has it up, and started for the command when
 * not.
 */
export async function openAdminDatabase(
  config: Config,
  logger: Logger,
  applicationName: string,
): Promise<AdminDatabase> {
  if (config.databaseUrl) {
    const sql = connectAs({ kind: 'url', url: config.databaseUrl.expose() }, undefined, {
      applicationName,
      max: 2,
    });
    return { sql, close: () => sql.end() };
  }
  if (config.mode !== 'development') {
    throw new ConfigError('CARDHOLD_DATABASE_URL', 'is required for this command in production mode');
  }
  const socketDir = path.join(config.dataDir, 'run');
  const running = await access(path.join(socketDir, `.s.PGSQL.${EMBEDDED_SOCKET_PORT}`)).then(
    () => true,
    () => false,
  );
  if (running) {
    const password = (await readFile(path.join(config.dataDir, 'postgres-admin.secret'), 'utf8')).trim();
    const sql = connectAs(
      { kind: 'socket', socketDir, port: EMBEDDED_SOCKET_PORT, database: EMBEDDED_DATABASE },
      { user: EMBEDDED_ADMIN_USER, password },
      { applicationName, max: 2 },
    );
    try {
      await ping(sql);
      return { sql, close: () => sql.end() };
    } catch {
      await sql.end();
    }
  }
  const embedded = await startEmbeddedPostgres(config.dataDir, logger);
  const sql = connectAs(
    embedded.target,
    { user: embedded.adminUser, password: embedded.adminPassword },
    { applicationName, max: 2 },
  );
  return {
    sql,
    close: async () => {
      await sql.end();
      await embedded.stop();
    },
  };
}
