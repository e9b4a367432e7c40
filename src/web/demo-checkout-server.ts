import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { Agent, fetch } from 'undici';
import type { TlsMaterial } from '../http/create-server.ts';
import type { Logger } from '../shared/logger.ts';
import type { Secret } from '../shared/secret.ts';
import { cvvSlotIdPattern, tokenIdPattern } from '../vault/identifiers.ts';
import { demoCheckoutPage, demoCheckoutStyle } from './demo-checkout-page.ts';
import { webAssets } from './web-assets.ts';

export interface DemoCheckout {
  url: string;
  close(): Promise<void>;
}

export interface DemoCheckoutOptions {
  host: string;
  port: number;
  /** Development only: the local CA's certificate for this host. */
  tls: TlsMaterial;
  vaultUrl: string;
  apiUrl: string;
  /** The demo merchant's secret key: used by this server only, never sent to the browser. */
  secretKey: Secret<string>;
  /** Issues the demo merchant's publishable key for the page's origin, once the port is known. */
  issuePublishableKey(origin: string): Promise<string>;
  logger: Logger;
}

const TOKEN = new RegExp(tokenIdPattern);
const CVV_SLOT = new RegExp(cvvSlotIdPattern);
const AMOUNT = 2500;

/**
 * The demo merchant's web shop, in development only: a small HTTPS server on its own port (so its own
 * origin) serving a checkout page that tokenizes through the hosted fields, and a `/pay` endpoint that
 * pays with the token through the api using the merchant's secret key, server to server, as a real
 * merchant's back end would.
 */
export async function startDemoCheckout(options: DemoCheckoutOptions): Promise<DemoCheckout> {
  const logger = options.logger.child({ component: 'demo-checkout' });
  const agent = new Agent({ connect: { ca: options.tls.ca }, keepAliveTimeout: 1000 });
  const vaultOrigin = new URL(options.vaultUrl).origin;
  let publishableKey = '';
  const csp = [
    "default-src 'none'",
    `script-src 'self' ${vaultOrigin}`,
    `frame-src ${vaultOrigin}`,
    "connect-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const headers = {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'strict-transport-security': 'max-age=63072000',
    'content-security-policy': csp,
  };
  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    res.writeHead(status, { ...headers, 'content-type': type });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, body: unknown) =>
    send(res, status, 'application/json', JSON.stringify(body));

  const pay = async (req: IncomingMessage, res: ServerResponse) => {
    // Only the shop's own page may pay: a JSON body (which another site cannot send without a preflight
    // this server never answers) from this origin. A cross-site form could otherwise charge any token.
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    if (
      type !== 'application/json' ||
      (site !== undefined && site !== 'same-origin') ||
      (origin !== undefined && origin !== `https://${req.headers.host}`)
    ) {
      return json(res, 403, { status: 'error', message: "Only this shop's own page can pay." });
    }
    let raw = '';
    for await (const chunk of req) {
      raw += String(chunk);
      if (raw.length > 1024) return json(res, 413, { status: 'error', message: 'Request too large.' });
    }
    let body: { token?: unknown; cvv_slot?: unknown };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      return json(res, 400, { status: 'error', message: 'Not JSON.' });
    }
    const token = typeof body.token === 'string' && TOKEN.test(body.token) ? body.token : undefined;
    const slot =
      typeof body.cvv_slot === 'string' && CVV_SLOT.test(body.cvv_slot) ? body.cvv_slot : undefined;
    if (!token) return json(res, 400, { status: 'error', message: 'A token is required.' });
    const form = new URLSearchParams({
      amount: String(AMOUNT),
      currency: 'usd',
      confirm: 'true',
      payment_method: token,
      description: 'Demo shop order',
    });
    if (slot) form.set('payment_method_options[card][cvc_token]', slot);
    const response = await fetch(`${options.apiUrl}/v1/payment_intents`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${options.secretKey.expose()}`,
        'content-type': 'application/x-www-form-urlencoded',
        'idempotency-key': randomUUID(),
      },
      body: form.toString(),
      dispatcher: agent,
    });
    const answer = (await response.json().catch(() => ({}))) as {
      id?: string;
      status?: string;
      error?: { message?: string; decline_code?: string; payment_intent?: { id?: string } };
    };
    if (response.ok && answer.id) {
      logger.info({ paymentIntent: answer.id, status: answer.status }, 'demo payment');
      return json(res, 200, { status: answer.status, id: answer.id });
    }
    const id = answer.error?.payment_intent?.id;
    logger.info({ paymentIntent: id, httpStatus: response.status }, 'demo payment refused');
    return json(res, 200, {
      status: 'failed',
      ...(id ? { id } : {}),
      message: answer.error?.message ?? `The payment failed (${response.status}).`,
      ...(answer.error?.decline_code ? { decline_code: answer.error.decline_code } : {}),
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://demo.invalid');
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /') {
      const page = demoCheckoutPage({
        assets: await webAssets(),
        vaultUrl: options.vaultUrl,
        publishableKey,
      });
      return send(res, 200, 'text/html; charset=utf-8', page);
    }
    if (route === 'GET /checkout.js') {
      const asset = (await webAssets()).demoCheckout;
      return send(res, 200, asset.contentType, asset.body);
    }
    if (route === 'GET /checkout.css') return send(res, 200, 'text/css; charset=utf-8', demoCheckoutStyle);
    if (route === 'POST /pay') return pay(req, res);
    return send(res, 404, 'text/plain; charset=utf-8', 'Not found');
  };

  const server: Server = createServer(
    { key: options.tls.key, cert: options.tls.cert, minVersion: 'TLSv1.2' },
    (req, res) => {
      handle(req, res).catch((error: unknown) => {
        logger.error({ err: { message: String(error) } }, 'demo checkout request failed');
        if (!res.headersSent) json(res, 500, { status: 'error', message: 'The demo shop failed.' });
        else res.destroy();
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host === '0.0.0.0' || options.host === '::' ? 'localhost' : options.host;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  try {
    publishableKey = await options.issuePublishableKey(url);
  } catch (error) {
    server.close();
    throw error;
  }
  logger.info({ url }, 'demo checkout listening');
  return {
    url,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await agent.close();
    },
  };
}
