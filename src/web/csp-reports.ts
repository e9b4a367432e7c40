import type { RoleMetrics } from '../http/metrics.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * Content-Security-Policy violation reports from browsers showing the card fields: the alert half of
 * PCI DSS 11.6.1 (detect and alert on unauthorized changes to what a payment page runs). The CSP forbids
 * anything the page does not ship; a browser that meets something else (an injected script, a request
 * to another origin) blocks it and reports it here.
 *
 * Reports are written by whoever posts them, so they are reduced to a closed summary before anything is
 * kept: the directive from a fixed list, and what was blocked as a keyword, a scheme or a site. Never a
 * path, a query, a subdomain, an address's low bits, a sample or a line of script, which could carry
 * anything, a card number included.
 */

/** The CSP directives a report can name; anything else is `other`. */
export const cspDirectives = [
  'default-src',
  'script-src',
  'script-src-elem',
  'script-src-attr',
  'style-src',
  'style-src-elem',
  'style-src-attr',
  'connect-src',
  'img-src',
  'font-src',
  'media-src',
  'object-src',
  'frame-src',
  'child-src',
  'worker-src',
  'manifest-src',
  'base-uri',
  'form-action',
  'frame-ancestors',
  'require-trusted-types-for',
  'trusted-types',
  'other',
] as const;
export type CspDirective = (typeof cspDirectives)[number];

export interface CspViolation {
  directive: CspDirective;
  /**
   * `inline`, `eval`, `wasm-eval`, `trusted-types-policy`, `trusted-types-sink`, a scheme (`data:`), a
   * site (`https://*.skim.example:8443`: scheme, the name's last two labels or the address's /24, port),
   * or `other`.
   */
  blocked: string;
  disposition: 'enforce' | 'report';
}

/** At most this many reports are read from one request; the Reporting API batches a few. */
export const MAX_REPORTS_PER_REQUEST = 50;

const KEYWORDS = new Set(['inline', 'eval', 'wasm-eval', 'trusted-types-policy', 'trusted-types-sink']);

/**
 * The violations in a body, as sent with `application/csp-report` (`{"csp-report": {...}}`, CSP Level 2's
 * report-uri) or `application/reports+json` (an array of reports, the Reporting API's report-to). Reports
 * of other types in the array are skipped. `undefined`: the body is neither.
 */
export function parseCspReports(body: unknown): CspViolation[] | undefined {
  if (Array.isArray(body)) {
    const found: CspViolation[] = [];
    for (const report of body.slice(0, MAX_REPORTS_PER_REQUEST)) {
      if (!isObject(report)) return undefined;
      if (report['type'] !== 'csp-violation') continue;
      const inner = report['body'];
      if (!isObject(inner)) return undefined;
      found.push(
        summarize(
          inner['effectiveDirective'],
          inner['blockedURL'] ?? inner['blockedURI'],
          inner['disposition'],
        ),
      );
    }
    return found;
  }
  if (isObject(body) && isObject(body['csp-report'])) {
    const inner = body['csp-report'];
    return [
      summarize(
        inner['effective-directive'] ?? inner['violated-directive'],
        inner['blocked-uri'],
        inner['disposition'],
      ),
    ];
  }
  return undefined;
}

function summarize(directive: unknown, blocked: unknown, disposition: unknown): CspViolation {
  return {
    directive: directiveOf(directive),
    blocked: blockedOf(blocked),
    disposition: disposition === 'report' ? 'report' : 'enforce',
  };
}

function directiveOf(value: unknown): CspDirective {
  if (typeof value !== 'string') return 'other';
  // A violated directive may come with its value ("img-src 'self'"): the name is the first word.
  const name = value.trim().split(/\s/, 1)[0]?.toLowerCase() ?? '';
  return (cspDirectives as readonly string[]).includes(name) ? (name as CspDirective) : 'other';
}

function blockedOf(value: unknown): string {
  if (typeof value !== 'string' || value.length > 4096) return 'other';
  if (KEYWORDS.has(value)) return value;
  try {
    const url = new URL(value);
    if (
      (url.protocol === 'https:' || url.protocol === 'http:' || url.protocol === 'wss:') &&
      url.origin !== 'null'
    )
      return `${url.protocol}//${siteOf(url.hostname)}${url.port ? `:${url.port}` : ''}`;
    // data:, blob:, javascript: and the like: the scheme alone says what was tried.
    return /^[a-z][a-z0-9+.-]{0,20}:$/.test(url.protocol) ? url.protocol : 'other';
  } catch {
    return 'other';
  }
}

/**
 * A name as its last two labels (`*.skim.example`), an IPv4 address as its /24 (`203.0.113.x`), an IPv6
 * address as `[ipv6]`: a skimmer can put stolen data in the labels before the site, or in the low bits of
 * an address it owns (an IPv6 /64 carries 64 bits a report), and no card-number check finds it there.
 * Labels are cut at 63 characters, as DNS cuts them.
 */
function siteOf(hostname: string): string {
  if (hostname.startsWith('[')) return '[ipv6]';
  if (/^[0-9.]+$/.test(hostname)) return `${hostname.split('.').slice(0, 3).join('.')}.x`;
  const labels = hostname.split('.').filter((label) => label.length > 0);
  const site = labels
    .slice(-2)
    .map((label) => label.slice(0, 63))
    .join('.');
  return labels.length > 2 ? `*.${site}` : site;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Where violations go: the metric every one counts in, and a warning per kind at most once a minute, LOG_BUDGET a minute in all. */
export class CspViolationSink {
  readonly #logger: Logger;
  readonly #metrics: RoleMetrics | undefined;
  readonly #now: () => number;
  /** When each kind was last logged, and how many since were counted without a line. */
  readonly #seen = new Map<string, { at: number; suppressed: number }>();
  /** All kinds together: lines written in the current minute, and violations not logged in it. */
  #window = { start: Number.NEGATIVE_INFINITY, lines: 0, unlogged: 0 };

  constructor(logger: Logger, metrics: RoleMetrics | undefined, now: () => number = Date.now) {
    this.#logger = logger;
    this.#metrics = metrics;
    this.#now = now;
  }

  record(violations: readonly CspViolation[]): void {
    const now = this.#now();
    this.#roll(now);
    for (const violation of violations) {
      this.#metrics?.cspViolation(violation.directive);
      // Anyone can post reports, and make up as many kinds as it likes: one line per kind a minute, and
      // at most LOG_BUDGET lines a minute in all, keep a flood out of the logs; the metric counts all.
      const kind = `${violation.directive} ${violation.blocked} ${violation.disposition}`;
      const seen = this.#seen.get(kind);
      if (seen && now - seen.at < LOG_INTERVAL_MS) {
        seen.suppressed++;
        continue;
      }
      if (this.#window.lines >= LOG_BUDGET) {
        this.#window.unlogged++;
        continue;
      }
      this.#window.lines++;
      if (this.#seen.size >= MAX_KINDS) this.#seen.clear();
      this.#seen.set(kind, { at: now, suppressed: 0 });
      this.#logger.warn(
        { csp: { ...violation, suppressed: seen?.suppressed ?? 0 } },
        'the card fields page reported a content security policy violation (PCI DSS 11.6.1)',
      );
    }
  }

  /** A new minute: says how many went unlogged in the last one, if any did. */
  #roll(now: number): void {
    if (now - this.#window.start < LOG_INTERVAL_MS) return;
    if (this.#window.unlogged > 0) {
      this.#logger.warn(
        { csp: { unlogged: this.#window.unlogged } },
        'more content security policy violations were reported than are logged one by one (PCI DSS 11.6.1)',
      );
    }
    this.#window = { start: now, lines: 0, unlogged: 0 };
  }
}

const LOG_INTERVAL_MS = 60_000;
/** Lines a minute, all kinds together. */
export const LOG_BUDGET = 20;
const MAX_KINDS = 1000;
