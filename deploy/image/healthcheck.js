// Container health check, in Node because the runtime image has no shell or curl. It finds the role
// this container runs from PID 1's command line (`… cardhold.js vault|api|acquirer`), then asks that role's
// /healthz (liveness) over HTTPS. Exit 0: healthy; 1: not.
// The probe does not authenticate the server: it sends nothing secret and reads only the status code,
// as a kubelet HTTPS probe does; the role's certificate names its service, not the loopback address.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';

const defaults = { vault: 8443, api: 8444, acquirer: 8445 };
let role;
try {
  const args = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
  role = args.find((argument) => argument in defaults);
} catch {
  role = undefined;
}
if (!role) {
  process.stderr.write('healthcheck: PID 1 runs no cardhold role (vault, api, acquirer)\n');
  process.exit(1);
}
const port = Number(process.env[`CARDHOLD_${role.toUpperCase()}_PORT`] ?? defaults[role]);
const configured = process.env.CARDHOLD_HOST ?? '127.0.0.1';
const host = configured === '0.0.0.0' || configured === '::' ? '127.0.0.1' : configured;

const probe = request(
  { host, port, path: '/healthz', method: 'GET', rejectUnauthorized: false, timeout: 3000 },
  (response) => {
    response.resume();
    process.exit(response.statusCode === 200 ? 0 : 1);
  },
);
probe.on('timeout', () => probe.destroy(new Error('timed out')));
probe.on('error', (error) => {
  process.stderr.write(`healthcheck: ${role} on ${host}:${port}: ${error.message}\n`);
  process.exit(1);
});
probe.end();
