import type { Logger } from '../shared/logger.ts';
import { connect, type Sql } from './database.ts';

/** Where a PostgreSQL is: a URL (production, external servers) or the embedded server's socket. */
export type DatabaseTarget =
  | { kind: 'url'; url: string }
  | { kind: 'socket'; socketDir: string; port: number; database: string };

export interface Credentials {
  user: string;
  password: string;
}

export function connectAs(
  target: DatabaseTarget,
  credentials: Credentials | undefined,
  options: { applicationName: string; max?: number; logger?: Logger },
): Sql {
  if (target.kind === 'url') {
    const url = new URL(target.url);
    if (credentials) {
      url.username = encodeURIComponent(credentials.user);
      url.password = encodeURIComponent(credentials.password);
    }
    return connect({ url: url.toString(), ...options });
  }
  return connect({
    host: target.socketDir,
    port: target.port,
    database: target.database,
    user: credentials?.user,
    password: credentials?.password,
    ...options,
  });
}
