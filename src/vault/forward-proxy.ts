import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent, request, errors as undiciErrors } from 'undici';
import type { AccessContext } from '../audit/events.ts';
import type { TlsMaterial } from '../http/create-server.ts';
import { CardholdError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { redactPans } from '../shared/pan-detect.ts';
import type { CvvSlots } from './cvv-slots.ts';
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
/** JSON fields whose values are card verification codes, wherever a processor echoes them. */
const CVV_FIELD = /"(cvv|cvc|cvv2|cvc2|cid|security_code|card_verification_value)"\s*:\s*"[^"]*"/gi;

interface AllowedTarget {
  origin: string;
  pathPrefix: string;
}

/**
 * The only way card data leaves the vault (design.md §2): towards an allow-listed https processor,
 * with the placeholders of a template filled from a token (and a CVV slot), the processor's certificate
 * verified, the vault's own client certificate presented, and any card number or CVV scrubbed from the
 * answer. A CVV slot is destroyed by a definitive answer (HTTP status below 500: the processor approved
 * or refused, PCI DSS 3.3.1.2) and kept for a retry after a timeout, a lost connection or a 5xx.
 */
export class ForwardProxy {
  readonly #tokens: TokenService;
  readonly #cvvSlots: CvvSlots;
  readonly #logger: Logger;
  readonly #defaultTimeoutMs: number;
  readonly #extraCa: Buffer | undefined;
  readonly #allowed: AllowedTarget[] = [];
  #agent: Agent;

  constructor(options: {
    tokens: TokenService;
    cvvSlots: CvvSlots;
    logger: Logger;
    allowlist: readonly string[];
    timeoutMs: number;
    clientTls: TlsMaterial;
    /** Extra trusted CAs for processors (CARDHOLD_FORWARD_CA_FILE, the local CA in development). */
    extraCa?: Buffer | undefined;
  }) {
    this.#tokens = options.tokens;
    this.#cvvSlots = options.cvvSlots;
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
    if (used.size === 0) {
      // No card data in it: a capture, a refund or a status query goes out as it is, and no card is opened.
      return { ...(await this.#send(req, noCard)), cvvSlot: null };
    }
    const token = req.token;
    if (!token) {
      throw new CardholdError('forward_template_invalid', {
        field: 'token',
        detail: 'The template has placeholders: name the token to fill them from',
      });
    }
    const target = new URL(req.url);
    // Recorded before the card is opened: a forward that is not on record does not happen.
    const card = await this.#tokens.openForForward(ctx, token, `${target.origin}${target.pathname}`);
    const send = (cvv: string) => this.#send(req, cardValues(card, cvv));
    if (!req.cvvSlot) return { ...(await send('')), cvvSlot: null };

    const slotId = req.cvvSlot;
    let destroyed = false;
    const result = await this.#cvvSlots.consume(ctx, slotId, token, async (cvv) => {
      const sent = await send(cvv.expose().toString('utf8'));
      const status = sent.response?.status ?? 0;
      const definitive = sent.outcome === 'answered' && status < 500;
      destroyed = definitive;
      return {
        outcome: definitive ? (status < 400 ? 'approved' : 'declined') : 'retriable',
        result: sent,
      };
    });
    return { ...result, cvvSlot: { id: slotId, destroyed } };
  }

  async #send(req: ForwardRequest, values: CardValues): Promise<Omit<ForwardResult, 'cvvSlot'>> {
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
        if (typeof value === 'string') returned[name] = redactPans(value);
      }
      return {
        outcome: 'answered',
        sent: true,
        response: { status: response.statusCode, headers: returned, body: scrub(text) },
      };
    } catch (error) {
      const outcome = classify(error);
      this.#logger.warn(
        { outcome, target: new URL(req.url).origin, error: errorCode(error) },
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

/** Card numbers (any Luhn-valid run) and CVV fields never travel back to the caller. */
export function scrub(text: string): string {
  return redactPans(text).replace(CVV_FIELD, (_m, key: string) => `"${key}":"[REDACTED]"`);
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

const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

function errorCode(error: unknown): string {
  const e = error as { code?: string; cause?: { code?: string }; name?: string };
  return e?.cause?.code ?? e?.code ?? e?.name ?? 'unknown';
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
  return NOT_SENT.has(errorCode(error)) ? 'connection_failed' : 'connection_lost';
}
