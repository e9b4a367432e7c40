import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent, request, errors as undiciErrors } from 'undici';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { type AccessContext, accessEvent } from '../audit/events.ts';
import type { TlsMaterial } from '../http/create-server.ts';
import { connectErrorCode, neverSent } from '../shared/connect-errors.ts';
import { CardholdError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { panRedaction, redactPans } from '../shared/pan-detect.ts';
import type { AuthorizationOutcome, CvvSlots } from './cvv-slots.ts';
import { type CardValues, encodingFor, placeholders, placeholdersIn, render } from './forward-template.ts';
import type { RevealedCard, TokenService } from './token-service.ts';

export interface ForwardRequest {
  /** Needed only when the template has placeholders (captures, refunds and status queries have none). */
  token?: string | undefined;
  cvvSlot?: string | undefined;
  method: 'POST' | 'PUT' | 'PATCH' | 'GET' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  body?: string | undefined;
  timeoutMs?: number | undefined;
}

/**
 * What happened to a forwarded request. Only `answered` is a definitive reply; `connection_failed`
 * means nothing reached the processor (safe to try elsewhere), while `timeout` and `connection_lost`
 * happened after sending: the processor may have acted, and only a status query can tell.
 */
export type ForwardOutcome = 'answered' | 'timeout' | 'connection_failed' | 'connection_lost';

export interface ForwardResult {
  outcome: ForwardOutcome;
  sent: boolean;
  response: { status: number; headers: Record<string, string>; body: string } | null;
  cvvSlot: { id: string; destroyed: boolean } | null;
}

const MAX_RESPONSE_BYTES = 1024 * 1024;
/** Response headers passed back to the caller; everything else (cookies, server banners) stays here. */
const RETURNED_HEADERS = ['content-type', 'retry-after', 'x-request-id'];
/** Request headers the caller may not set: the vault decides framing and routing itself. */
const FORBIDDEN_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade']);
/**
 * Names of fields whose values are card verification codes, wherever a processor echoes them: matched
 * whole and in any case, so camelCase (securityCode, cardCode, cardVerificationValue) is included.
 */
const CVV_NAMES =
  'cvv2?|cvc2?|cvn|csc|cid|cv[_-]?number|security[_-]?code|card[_-]?(?:code|cvv|cvc)|(?:card[_-]?)?verification[_-]?value';
/**
 * A JSON quote at any level of escaping (", \", \\\" …), with all of its backslashes: a processor that
 * echoes our request inside a JSON string escapes its quotes once per level of nesting.
 */
const QUOTE = String.raw`(?<!\\)(\\*")`;
/** A JSON string value of a CVV field, `"cvc":"123"`, at any level of escaping (the same on key and value). */
const CVV_JSON_STRING = new RegExp(String.raw`${QUOTE}(${CVV_NAMES})\1(\s*:\s*)\1.{0,256}?(?<!\\)\1`, 'gi');
/** A JSON number value of a CVV field, `"cvc":123`, or the first of a list, `"cvc":[123]`. */
const CVV_JSON_NUMBER = new RegExp(
  String.raw`${QUOTE}(${CVV_NAMES})\1(\s*:\s*)(\[\s*)?-?\d{1,64}(?:\.\d{1,64})?(?:[eE][+-]?\d{1,8})?`,
  'gi',
);
/**
 * `cvc=123` (a form answer, Stripe's `card[cvc]=123`, Adyen's `card.cvc=123`, also URL-encoded),
 * `cvc="123"` (an XML attribute) and `cvc: 123` (YAML, log lines), after a separator so that `acid=` or
 * `x_cvc=` are left alone. Every repetition is bounded: the text is an untrusted processor's answer of up
 * to 1 MiB, and an unbounded run scanned again from each of many starts would take the vault's thread for
 * seconds.
 */
const CVV_KEY_VALUE = new RegExp(
  String.raw`(?<=^|[?&;\s"'\[>{,(.]|%5B)(${CVV_NAMES})(\]|%5D)?(\s{0,16}(?:[=:]|%3D)\s{0,16})(?:(\\*["'])(.{0,256}?)(?<!\\)\4|[^&;\s"'<>\\,})\]%]{1,256})`,
  'gim',
);
/** An XML element `<cvc>123</cvc>` (namespaced, with attributes, CDATA, or with `<\/` from a JSON string). */
const CVV_XML_ELEMENT = new RegExp(
  String.raw`(<(?:[\w.-]+:)?(${CVV_NAMES})(?:\s[^<>]{0,1024})?>)(?:<!\[CDATA\[[\s\S]{0,256}?\]\]>|[^<]{0,256})(<\\*\/(?:[\w.-]+:)?\2\s*>)`,
  'gi',
);
const REDACTED = '[REDACTED]';

interface AllowedTarget {
  origin: string;
  pathPrefix: string;
}

/**
 * The only way card data leaves the vault (design.md §2): towards an allow-listed https processor,
 * with the placeholders of a template filled from a token (and a CVV slot), the processor's certificate
 * verified, the vault's own client certificate presented, and any card number or CVV scrubbed from the
 * answer. Every forward is on the audit trail before anything is sent. A CVV slot is destroyed by an
 * authorization answer (HTTP 2xx, or 402, with which processors such as Stripe decline; PCI DSS 3.3.1.2)
 * and kept for a retry, within its uses and TTL, after a timeout, a lost connection, a 5xx or any other
 * status (400, 401, 403, 404, 408, 409, 429: the request was refused, not the card).
 */
export class ForwardProxy {
  readonly #tokens: TokenService;
  readonly #cvvSlots: CvvSlots;
  /** Records the forwards that carry no card data (the token service and CVV slots record the others). */
  readonly #trail: AuditTrail;
  readonly #logger: Logger;
  readonly #defaultTimeoutMs: number;
  readonly #extraCa: Buffer | undefined;
  readonly #allowed: AllowedTarget[] = [];
  #agent: Agent;

  constructor(options: {
    tokens: TokenService;
    cvvSlots: CvvSlots;
    trail: AuditTrail;
    logger: Logger;
    allowlist: readonly string[];
    timeoutMs: number;
    clientTls: TlsMaterial;
    /** Extra trusted CAs for processors (CARDHOLD_FORWARD_CA_FILE, the local CA in development). */
    extraCa?: Buffer | undefined;
  }) {
    this.#tokens = options.tokens;
    this.#cvvSlots = options.cvvSlots;
    this.#trail = options.trail;
    this.#logger = options.logger;
    this.#defaultTimeoutMs = options.timeoutMs;
    this.#extraCa = options.extraCa;
    for (const base of options.allowlist) this.allow(base);
    this.#agent = this.#newAgent(options.clientTls);
  }

  /** Adds a processor base URL (origin and path prefix); https only, no credentials in it. */
  allow(base: string): void {
    const url = parseTarget(base);
    if (!url) throw new Error('forward allow-list entries must be https URLs without credentials');
    const prefix = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
    this.#allowed.push({ origin: url.origin, pathPrefix: prefix });
  }

  isAllowed(target: string): boolean {
    const url = parseTarget(target);
    if (!url) return false;
    // An encoded slash, backslash or dot could climb out of the allowed prefix at a processor that
    // decodes before it normalises (`/v1/..%2fadmin`); no processor API needs them in a path.
    if (/%(?:2f|5c|2e)/i.test(url.pathname)) return false;
    const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
    return this.#allowed.some((a) => a.origin === url.origin && path.startsWith(a.pathPrefix));
  }

  /** New client certificate or CA bundle (rotation without restart). */
  useTls(material: TlsMaterial): void {
    const old = this.#agent;
    this.#agent = this.#newAgent(material);
    void old.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** Sends one request on; a forward whose audit record cannot be written is not sent (audit_unavailable). */
  async forward(ctx: AccessContext, req: ForwardRequest): Promise<ForwardResult> {
    if (!this.isAllowed(req.url)) {
      throw new CardholdError('forward_target_not_allowed', { field: 'request.url' });
    }
    for (const name of Object.keys(req.headers)) {
      if (FORBIDDEN_HEADERS.has(name.toLowerCase())) {
        throw new CardholdError('forward_template_invalid', {
          field: `request.headers.${name}`,
          detail: 'This header is set by the vault',
        });
      }
    }
    const used = placeholdersIn(req.body ?? '', 'request.body');
    for (const [name, value] of Object.entries(req.headers)) {
      for (const p of placeholdersIn(value, `request.headers.${name}`)) used.add(p);
    }
    if (placeholdersIn(req.url, 'request.url').size > 0) {
      throw new CardholdError('forward_template_invalid', {
        field: 'request.url',
        detail: 'Card data never goes into a URL',
      });
    }
    const needsCvv = used.has('card.cvv');
    if (needsCvv && !req.cvvSlot) {
      throw new CardholdError('forward_template_invalid', {
        field: 'cvv_slot',
        detail: 'The template uses {{card.cvv}}: name the CVV slot',
      });
    }
    if (!needsCvv && req.cvvSlot) {
      throw new CardholdError('forward_template_invalid', {
        field: 'request.body',
        detail: 'A CVV slot was named but the template does not use {{card.cvv}}',
      });
    }
    const target = new URL(req.url);
    // Origin and path only: a query string is the caller's, and stays out of the trail.
    const targetPath = `${target.origin}${target.pathname}`;
    if (used.size === 0) {
      // No card data in it: a capture, a void, a refund or a status query goes out as it is, and no card
      // is opened. It is still recorded first: a forward that is not on record does not happen.
      await this.#trail.record(
        accessEvent(ctx, 'processor.forward', { type: 'processor', id: target.origin }, ctx.merchantId, {
          details: { target: targetPath, method: req.method },
        }),
      );
      return { ...(await this.#send(req, noCard)), cvvSlot: null };
    }
    const token = req.token;
    if (!token) {
      throw new CardholdError('forward_template_invalid', {
        field: 'token',
        detail: 'The template has placeholders: name the token to fill them from',
      });
    }
    // Recorded before the card is opened: a forward that is not on record does not happen.
    const card = await this.#tokens.openForForward(ctx, token, targetPath);
    const send = (cvv: string) => this.#send(req, cardValues(card, cvv));
    if (!req.cvvSlot) return { ...(await send('')), cvvSlot: null };

    const slotId = req.cvvSlot;
    const consumed = await this.#cvvSlots.consume(ctx, slotId, token, async (cvv) => {
      const sent = await send(cvv.expose().toString('utf8'));
      return { outcome: authorizationOutcome(sent), result: sent };
    });
    if (consumed.destroyFailure) {
      // The processor answered and the CVV could not be destroyed: the answer still goes back (the card
      // data has left; losing the answer could make the api charge again). The slot's TTL removes it.
      this.#logger.error(
        {
          cvv_slot: slotId,
          status: consumed.result.response?.status ?? null,
          error: consumed.destroyFailure,
        },
        'CVV slot not destroyed after an authorization answer; its TTL will remove it',
      );
    }
    return { ...consumed.result, cvvSlot: { id: slotId, destroyed: consumed.destroyed } };
  }

  async #send(req: ForwardRequest, values: CardValues): Promise<Omit<ForwardResult, 'cvvSlot'>> {
    const known = { cvv: values['card.cvv'] || undefined, pan: values['card.number'] || undefined };
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) headers[name] = render(value, values, 'raw');
    const contentType = Object.entries(headers).find(([n]) => n.toLowerCase() === 'content-type')?.[1];
    const body =
      req.body === undefined ? undefined : Buffer.from(render(req.body, values, encodingFor(contentType)));
    const timeoutMs = req.timeoutMs ?? this.#defaultTimeoutMs;
    try {
      const response = await request(req.url, {
        method: req.method,
        headers,
        body,
        dispatcher: this.#agent,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await readLimited(response.body);
      const returned: Record<string, string> = {};
      for (const name of RETURNED_HEADERS) {
        const value = response.headers[name];
        if (typeof value === 'string') returned[name] = scrub(value, known);
      }
      return {
        outcome: 'answered',
        sent: true,
        response: { status: response.statusCode, headers: returned, body: scrub(text, known) },
      };
    } catch (error) {
      const outcome = classify(error);
      this.#logger.warn(
        { outcome, target: new URL(req.url).origin, error: connectErrorCode(error) },
        'forwarded request got no answer',
      );
      return { outcome, sent: outcome !== 'connection_failed', response: null };
    } finally {
      // The body held card data; the template strings are gone with the request.
      body?.fill(0);
    }
  }

  #newAgent(tls: TlsMaterial): Agent {
    const ca = [...rootCertificates, tls.ca.toString(), ...(this.#extraCa ? [this.#extraCa.toString()] : [])];
    // One secure context for every connection: built per connection, it would parse the ~140 system
    // roots again each time.
    const secureContext = createSecureContext({ ca, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' });
    return new Agent({
      connect: { secureContext, rejectUnauthorized: true },
      keepAliveTimeout: 10_000,
      connections: 64,
    });
  }
}

function parseTarget(value: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' || url.username || url.password) return undefined;
  return url;
}

/** Never substituted (a template without placeholders), but typed like the real thing. */
const noCard = Object.fromEntries(placeholders.map((p) => [p, ''])) as CardValues;

function cardValues(card: RevealedCard, cvv: string): CardValues {
  const month = String(card.expMonth);
  const year = String(card.expYear);
  return {
    'card.number': card.pan.expose(),
    'card.exp_month': month,
    'card.exp_month_2': month.padStart(2, '0'),
    'card.exp_year': year,
    'card.exp_year_2': year.slice(-2),
    'card.holder_name': card.holderName ?? '',
    'card.cvv': cvv,
  };
}

/**
 * What counts as an authorization answer, which destroys the CVV slot: a 2xx (approved or declined: the
 * test acquirer answers both with 200, so the status alone cannot tell), or a 402 (how Stripe and others
 * decline a card). Anything else refused the request, not the card, or got no answer: the slot stays.
 */
function authorizationOutcome(sent: Omit<ForwardResult, 'cvvSlot'>): AuthorizationOutcome {
  const status = sent.outcome === 'answered' ? (sent.response?.status ?? 0) : 0;
  if (status >= 200 && status < 300) return 'answered';
  if (status === 402) return 'declined';
  return 'retriable';
}

/** What comes before a value standing on its own: a quote, `=`, `:`, `,`, `>`, a bracket, a space, or their %-escapes. */
const VALUE_BEFORE = String.raw`(?<=^|[\s"'=:,;>\[({|&]|%(?:3[Dd]|2[027Cc]|3[Aa]|5[Bb]))`;
/** What comes after it: a quote (or its escaping backslash), `,`, `;`, `<`, a closing bracket, a space, `&`, a %-escape. */
const VALUE_AFTER = String.raw`(?=$|[\s"',;<\]})|&\\%])`;

/** The card number the vault filled in, however the processor wrote it back: its digits with up to three non-alphanumerics between any two. */
function knownPanPattern(pan: string): RegExp {
  return new RegExp(String.raw`(?<!\d)${pan.split('').join('[^0-9A-Za-z]{0,3}')}(?!\d)`, 'g');
}

/**
 * The card number's encodings a processor might echo a request in: hex of its characters, and base64 at
 * each of the three alignments it may start at (only the characters that depend on the card number alone).
 */
function encodedPans(pan: string): string[] {
  const hex = Buffer.from(pan).toString('hex');
  const out = [hex, hex.toUpperCase()];
  for (const skew of [0, 1, 2]) {
    const encoded = Buffer.from(`${'\0'.repeat(skew)}${pan}`).toString('base64');
    const start = skew === 0 ? 0 : 4;
    const whole = Math.floor((pan.length - (skew === 0 ? 0 : 3 - skew)) / 3);
    out.push(encoded.slice(start, start + 4 * whole));
  }
  return out.filter((s) => s.length >= 12);
}

/**
 * Card numbers (any Luhn-valid run) and CVVs never travel back to the caller: the value of every CVV field
 * (JSON string or number at any level of escaping, form field, XML element or attribute). And what the
 * vault filled in for this forward, under any name: the card number with any separators, in hex or base64,
 * and the CVV wherever it stands as a value of its own (quoted, after `=`, `:`, `,` or `>`, %-escaped),
 * never inside a longer number or word (`17390` and `txn_739` stay). A number in the answer that happens to
 * equal the CVV is redacted too: the caller then cannot read that field, which fails safe (an unreadable
 * authorization answer is settled by a status query), where returning a CVV would not.
 */
export function scrub(
  text: string,
  known: { cvv?: string | undefined; pan?: string | undefined } = {},
): string {
  let out = redactPans(text)
    .replace(
      CVV_JSON_STRING,
      (_m, q: string, key: string, sep: string) => `${q}${key}${q}${sep}${q}${REDACTED}${q}`,
    )
    .replace(
      CVV_JSON_NUMBER,
      (_m, q: string, key: string, sep: string, list: string | undefined) =>
        `${q}${key}${q}${sep}${list ?? ''}${q}${REDACTED}${q}`,
    )
    .replace(
      CVV_KEY_VALUE,
      (_m, key: string, close: string | undefined, eq: string, q: string | undefined) =>
        `${key}${close ?? ''}${eq}${q ?? ''}${REDACTED}${q ?? ''}`,
    )
    .replace(
      CVV_XML_ELEMENT,
      (_m, open: string, _key: string, close: string) => `${open}${REDACTED}${close}`,
    );
  const { cvv, pan } = known;
  if (pan && /^\d{12,19}$/.test(pan)) {
    out = out.replace(knownPanPattern(pan), panRedaction);
    for (const encoded of encodedPans(pan)) out = out.replaceAll(encoded, panRedaction);
  }
  if (cvv) {
    const quoted = new RegExp(String.raw`(?<!\\)(\\*["'])${escapeRegExp(cvv)}\1`, 'g');
    out = out.replace(quoted, (_m, q: string) => `${q}${REDACTED}${q}`);
    // Unquoted: a JSON value (after `:`, `[` or `,`) becomes a string, so that JSON stays JSON.
    const bare = new RegExp(`${VALUE_BEFORE}${escapeRegExp(cvv)}${VALUE_AFTER}`, 'gm');
    out = out.replace(bare, (_m, offset: number, whole: string) =>
      /[:[,]\s*$/.test(whole.slice(Math.max(0, offset - 8), offset)) ? `"${REDACTED}"` : REDACTED,
    );
  }
  return out;
}

function escapeRegExp(value: string): string {
  return value.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

async function readLimited(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      throw new CardholdError('forward_response_too_large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Whether the request may have reached the processor decides between a clean retry and a sync. */
function classify(error: unknown): ForwardOutcome {
  if (error instanceof CardholdError) return 'connection_lost';
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    (error as Error)?.name === 'TimeoutError' ||
    (error as Error)?.name === 'AbortError'
  ) {
    return 'timeout';
  }
  return neverSent(error) ? 'connection_failed' : 'connection_lost';
}
