import postgres, { type Sql } from 'postgres';
import type { Logger } from '../shared/logger.ts';

export type { Sql } from 'postgres';

export interface ConnectionOptions {
  url?: string;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  max?: number;
  logger?: Logger;
  applicationName: string;
}

/**
 * A postgres.js pool with cardhold's defaults: bounded pool, prepared statements, server notices to the
 * debug log (never to stdout), and a statement timeout so a stuck query cannot hold a request forever.
 */
export function connect(options: ConnectionOptions): Sql {
  const common = {
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 10,
    prepare: true,
    onnotice: (notice: { message?: string }) =>
      options.logger?.debug({ notice: notice.message }, 'postgres notice'),
    connection: { application_name: options.applicationName, statement_timeout: 15000 },
  };
  if (options.url) return postgres(options.url, common);
  return postgres({
    ...common,
    host: options.host,
    port: options.port,
    database: options.database,
    username: options.user,
    password: options.password,
  });
}

// postgres.js's own connection failures, and PostgreSQL's answers for a server that is going away or
// refusing connections: SQLSTATE class 08, admin/crash shutdown, cannot connect now, too many connections.
const connectionFailureCodes = new Set([
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/** True when an error means the database cannot be reached, rather than that a query is wrong. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, syscall } = error as { code?: unknown; syscall?: unknown };
  if (syscall === 'connect') return true;
  if (typeof code !== 'string') return false;
  return connectionFailureCodes.has(code) || (code.length === 5 && code.startsWith('08'));
}

/** Cheap liveness query used by readiness checks. */
export async function ping(sql: Sql): Promise<void> {
  await sql`select 1`;
}
