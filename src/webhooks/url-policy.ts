import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { CardholdError } from '../shared/errors.ts';

/**
 * Addresses a production deployment must not post to: its own host, private and shared networks, and
 * every special-purpose range (IANA), including the IPv6 forms that carry an IPv4 address inside
 * (compatible, translated, NAT64, 6to4), which could otherwise reach 127.0.0.1 or 169.254.169.254.
 * IPv4-mapped addresses (::ffff:127.0.0.1) BlockList checks against the IPv4 rules itself; a
 * ::ffff:0:0/96 rule would match every IPv4 address.
 */
const internal = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  internal.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96],
  // IPv4-translated (SIIT, RFC 2765): ::ffff:0:a.b.c.d, which a translator on the path turns into a.b.c.d.
  ['::ffff:0:0:0', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  internal.addSubnet(net, prefix, 'ipv6');
}
internal.addAddress('::1', 'ipv6');

/** Whether a resolved or literal address is one a production deployment must not post to. */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && internal.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The dispatcher's DNS lookup in production: every address a name resolves to is checked, at connect
 * time, so a name that points (or is rebound) at a private address is refused where the connection is
 * made, not only when the endpoint was registered. Address literals never reach a lookup; the URL check
 * before each delivery refuses those.
 */
export function publicOnlyLookup(
  hostname: string,
  options: LookupOptions,
  callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const list = addresses as LookupAddress[];
    if (list.length === 0 || list.some((a) => isInternalAddress(a.address))) {
      const refused = Object.assign(new Error(`${hostname} resolves to a private or reserved address`), {
        code: 'WEBHOOK_ADDRESS_REFUSED',
      });
      return callback(refused, []);
    }
    if (options.all) return callback(null, list);
    const first = list[0] as LookupAddress;
    callback(null, first.address, first.family);
  });
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** Without IPv6 brackets or the trailing dot of a fully qualified name (`localhost.` is `localhost`). */
const bare = (hostname: string) =>
  hostname
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();

function isLoopback(hostname: string): boolean {
  const host = bare(hostname);
  if (host === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && loopback.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

function isInternalLiteral(hostname: string): boolean {
  const host = bare(hostname);
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return isInternalAddress(host);
}

/**
 * Where a webhook may be sent. Production: https only, never to loopback, private or reserved address
 * literals. Development: https anywhere, or http to loopback (a receiver on the developer's machine). No
 * credentials or fragments in the URL. Names are checked here as written; in production the dispatcher
 * also checks every address a name resolves to when it connects (publicOnlyLookup).
 */
export function assertWebhookUrl(url: string, production: boolean): URL {
  const refuse = (detail: string) => new CardholdError('webhook_url_invalid', { field: 'url', detail });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse('The URL is not an absolute URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw refuse('The URL must be https');
  if (parsed.username || parsed.password) throw refuse('The URL must not carry credentials');
  if (parsed.hash) throw refuse('The URL must not have a fragment');
  if (production) {
    if (parsed.protocol !== 'https:') throw refuse('The URL must be https');
    if (isInternalLiteral(parsed.hostname))
      throw refuse('The URL must not point at a private or loopback address');
  } else if (parsed.protocol === 'http:' && !isLoopback(parsed.hostname)) {
    throw refuse('The URL must be https (http only to loopback in development mode)');
  }
  return parsed;
}
