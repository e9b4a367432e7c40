import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import path from 'node:path';
import type { Origin } from '../audit/events.ts';
import { isCardholdError } from '../shared/errors.ts';
import type { Unsealer } from './unsealer.ts';

/**
 * The host's seal controls for `cardhold keys unseal|seal|seal-status`: a Unix socket (mode 0600, in a
 * 0700 directory) that only the service's operating-system user can open. The CLI names the person
 * running it (the OS user, or the user who ran sudo) and that name is the audited actor, as for every
 * other CLI command. One JSON request and one JSON answer per connection; shares are never logged.
 */
export interface ControlRequest {
  op: 'unseal' | 'seal' | 'status';
  share?: string;
  user: string;
}

export type ControlAnswer = { ok: true; status: unknown } | { ok: false; code: string; detail: string };

export function controlSocketDir(dataDir: string): string {
  return path.join(dataDir, 'keys', 'control');
}

export async function startControlSocket(options: {
  dataDir: string;
  name: string;
  unsealer: Unsealer;
  origin: Origin;
}): Promise<{ path: string; close(): Promise<void> }> {
  const dir = controlSocketDir(options.dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const file = path.join(dir, `${options.name}-${process.pid}.sock`);
  await rm(file, { force: true });
  const server: Server = createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > 4096) {
        socket.destroy();
        return;
      }
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      const line = buffer.slice(0, end);
      buffer = '';
      answer(line).then((reply) => socket.end(`${JSON.stringify(reply)}\n`));
    });
    socket.on('error', () => undefined);
  });
  const answer = async (line: string): Promise<ControlAnswer> => {
    try {
      const request = JSON.parse(line) as ControlRequest;
      const user = String(request.user ?? '').slice(0, 64) || 'unknown';
      const who = {
        actor: { type: 'user' as const, id: `os:${user}` },
        origin: { ...options.origin, userAgent: `cardhold keys ${request.op}` },
      };
      if (request.op === 'status') return { ok: true, status: options.unsealer.status() };
      if (request.op === 'seal') return { ok: true, status: await options.unsealer.seal(who) };
      if (request.op === 'unseal' && typeof request.share === 'string') {
        return { ok: true, status: await options.unsealer.submit(who, request.share) };
      }
      return { ok: false, code: 'request_invalid', detail: 'Unknown request' };
    } catch (error) {
      if (isCardholdError(error)) return { ok: false, code: error.code, detail: error.detail };
      return { ok: false, code: 'request_invalid', detail: 'The request is not valid JSON' };
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, resolve);
  });
  await chmod(file, 0o600);
  return {
    path: file,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }).then(() => rm(file, { force: true })),
  };
}

/** The control sockets of the cardhold processes running from this data directory. */
export async function findControlSockets(dataDir: string): Promise<string[]> {
  const dir = controlSocketDir(dataDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.sock')).map((n) => path.join(dir, n));
}

export function sendControl(socketPath: string, request: ControlRequest): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let data = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('end', () => {
      try {
        resolve(JSON.parse(data) as ControlAnswer);
      } catch (error) {
        reject(error);
      }
    });
    socket.on('error', reject);
  });
}
