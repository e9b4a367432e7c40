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

/** Cheap liveness query used by readiness checks. */
export async function ping(sql: Sql): Promise<void> {
  await sql`select 1`;
}
