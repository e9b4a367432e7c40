/**
 * A bare HTTPS hop, for the floor measurement of bench/payments.bench.ts (BENCH_FLOOR=1): fastify with a
 * JSON body schema over TLS, the caller's certificate verified when `mtls` is given, and, unless it is
 * the last hop, the body passed on to the next hop with a keep-alive undici agent presenting this hop's
 * certificate. No authentication, audit, database, crypto or business logic: what three chained hops
 * cost on their own, the part of an authorization that no optimisation of cardhold's code can remove.
 *
 *   node bench/hop-server.ts <port> <tls dir> <cert name> <mtls|open> [next hop url]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import Fastify from 'fastify';
import { Agent, request } from 'undici';

const [port, tlsDir, name, mode, next] = process.argv.slice(2);
if (!port || !tlsDir || !name || (mode !== 'mtls' && mode !== 'open')) {
  throw new Error('usage: hop-server.ts <port> <tls dir> <cert name> <mtls|open> [next url]');
}
const read = (file: string) => readFileSync(path.join(tlsDir, file));
const ca = read('ca.crt');
const cert = read(`${name}.crt`);
const key = read(`${name}.key`);

const app = Fastify({
  logger: false,
  https: {
    ca,
    cert,
    key,
    minVersion: 'TLSv1.2',
    requestCert: mode === 'mtls',
    rejectUnauthorized: mode === 'mtls',
  },
});
const agent = new Agent({
  connect: {
    secureContext: createSecureContext({ ca, cert, key, minVersion: 'TLSv1.2' }),
    rejectUnauthorized: true,
  },
  keepAliveTimeout: 10_000,
  connections: 64,
});

app.post(
  '/hop',
  {
    schema: {
      body: { type: 'object', additionalProperties: true, properties: { amount: { type: 'integer' } } },
    },
  },
  async (req) => {
    if (!next) return { object: 'hop', status: 'approved', id: 'auth_floor' };
    const answer = await request(next, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req.body),
      dispatcher: agent,
    });
    return (await answer.body.json()) as object;
  },
);

await app.listen({ port: Number(port), host: '127.0.0.1' });
process.stdout.write('running\n');
process.once('SIGTERM', () => {
  void app
    .close()
    .then(() => agent.close())
    .then(() => process.exit(0));
});
