import { BlockList, isIP } from 'node:net';
import { CardholdError } from '../shared/errors.ts';

/** Addresses a production deployment must not post to: its own host and private networks. */
const internal = new BlockList();
internal.addSubnet('127.0.0.0', 8, 'ipv4');
internal.addSubnet('10.0.0.0', 8, 'ipv4');
internal.addSubnet('172.16.0.0', 12, 'ipv4');
internal.addSubnet('192.168.0.0', 16, 'ipv4');
internal.addSubnet('169.254.0.0', 16, 'ipv4');
internal.addSubnet('100.64.0.0', 10, 'ipv4');
internal.addAddress('0.0.0.0', 'ipv4');
internal.addAddress('::1', 'ipv6');
internal.addAddress('::', 'ipv6');
internal.addSubnet('fc00::', 7, 'ipv6');
internal.addSubnet('fe80::', 10, 'ipv6');

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

const bare = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1');

function isLoopback(hostname: string): boolean {
  const host = bare(hostname);
  if (host === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && loopback.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

function isInternalLiteral(hostname: string): boolean {
  const host = bare(hostname);
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const family = isIP(host);
  return family !== 0 && internal.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Where a webhook may be sent. Production: https only, never to loopback or private address literals.
 * Development: https anywhere, or http to loopback (a receiver on the developer's machine). No
 * credentials or fragments in the URL. Names are checked as written; a name that resolves to a private
 * address is not caught here (see docs/webhooks.md).
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
