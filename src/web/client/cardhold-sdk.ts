/**
 * cardhold.js, the merchant-side SDK: mounts the hosted card fields in an iframe from the vault's
 * origin and talks to it only through postMessage, to that origin and from that iframe's window. The
 * merchant's page never holds the card: `tokenize()` resolves to a token id and a CVV slot id.
 *
 *   const fields = Cardhold.mount({ publishableKey: 'pk_test_…', vaultUrl: 'https://vault.example',
 *                                   container: '#card-fields', onChange: (state) => … });
 *   const { token, cvv_slot } = await fields.tokenize();
 */
import {
  type FieldsState,
  isFrameMessage,
  type ParentMessage,
  PROTOCOL,
  type TokenizedCard,
} from '../hosted-messages.ts';
import type { MerchantStyle } from '../merchant-style.ts';

export type { FieldsState, MerchantStyle, TokenizedCard };

export interface MountOptions {
  /** The merchant's publishable key (pk_test_… or pk_live_…); its allowed origins must include this page's. */
  publishableKey: string;
  /** The vault's base URL, e.g. https://vault.example.com. */
  vaultUrl: string;
  /** The element (or a selector for it) the iframe goes into. */
  container: HTMLElement | string;
  /** Colours, font, sizes within the limits in docs/web.md; anything else is ignored by the fields. */
  style?: MerchantStyle;
  /** Called with brand, completeness and the errors the user sees; never with card data. */
  onChange?: (state: FieldsState) => void;
  onReady?: () => void;
  /** The iframe's height in CSS pixels (default 300). */
  height?: number;
}

export interface CardFields {
  /** Validates and tokenizes the card in the iframe; rejects with a TokenizeError. */
  tokenize(): Promise<TokenizedCard>;
  /** The last state the fields reported, or null before they are ready. */
  readonly state: FieldsState | null;
  /** Removes the iframe and stops listening. */
  destroy(): void;
}

export class TokenizeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'TokenizeError';
    this.code = code;
  }
}

const TOKENIZE_TIMEOUT_MS = 30_000;

export function mount(options: MountOptions): CardFields {
  const vault = new URL(options.vaultUrl);
  if (vault.protocol !== 'https:') throw new Error('cardhold: vaultUrl must be https');
  const vaultOrigin = vault.origin;
  const container =
    typeof options.container === 'string' ? document.querySelector(options.container) : options.container;
  if (!(container instanceof HTMLElement)) throw new Error('cardhold: container not found');

  const src = new URL('/hosted/card-fields', vaultOrigin);
  src.searchParams.set('key', options.publishableKey);
  src.searchParams.set('origin', location.origin);
  const iframe = document.createElement('iframe');
  iframe.src = src.href;
  iframe.title = 'Secure card payment fields';
  iframe.setAttribute('allow', 'payment');
  iframe.style.border = '0';
  iframe.style.width = '100%';
  iframe.style.height = `${options.height ?? 300}px`;
  // No referrer: the merchant's page URL (order ids, …) is none of the vault's business.
  iframe.referrerPolicy = 'no-referrer';
  container.appendChild(iframe);

  let state: FieldsState | null = null;
  let ready = false;
  const queued: ParentMessage[] = [];
  const pending = new Map<
    string,
    { resolve: (card: TokenizedCard) => void; reject: (error: Error) => void; timer: number }
  >();

  const send = (message: ParentMessage) => {
    if (!ready) queued.push(message);
    else iframe.contentWindow?.postMessage(message, vaultOrigin);
  };

  const onMessage = (event: MessageEvent) => {
    // Only our iframe, at the vault's origin: another frame or window cannot forge a result.
    if (event.origin !== vaultOrigin || event.source !== iframe.contentWindow) return;
    const message = event.data;
    if (!isFrameMessage(message)) return;
    switch (message.type) {
      case 'ready':
        ready = true;
        if (options.style) queued.unshift({ protocol: PROTOCOL, type: 'configure', style: options.style });
        for (const m of queued.splice(0)) iframe.contentWindow?.postMessage(m, vaultOrigin);
        options.onReady?.();
        return;
      case 'change':
        state = message.state;
        options.onChange?.(message.state);
        return;
      case 'result': {
        const waiting = pending.get(message.requestId);
        if (!waiting) return;
        pending.delete(message.requestId);
        clearTimeout(waiting.timer);
        if (message.ok) waiting.resolve(message.card);
        else waiting.reject(new TokenizeError(message.error.code, message.error.message));
      }
    }
  };
  window.addEventListener('message', onMessage);

  return {
    get state() {
      return state;
    },
    tokenize() {
      return new Promise<TokenizedCard>((resolve, reject) => {
        const requestId = crypto.randomUUID();
        const timer = window.setTimeout(() => {
          pending.delete(requestId);
          reject(new TokenizeError('timeout', 'The card fields did not answer in time.'));
        }, TOKENIZE_TIMEOUT_MS);
        pending.set(requestId, { resolve, reject, timer });
        send({ protocol: PROTOCOL, type: 'submit', requestId });
      });
    },
    destroy() {
      window.removeEventListener('message', onMessage);
      for (const [, waiting] of pending) {
        clearTimeout(waiting.timer);
        waiting.reject(new TokenizeError('destroyed', 'The card fields were removed.'));
      }
      pending.clear();
      iframe.remove();
    },
  };
}
