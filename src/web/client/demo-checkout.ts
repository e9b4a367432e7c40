/**
 * The demo merchant's checkout script: what a merchant writes around cardhold.js. It reads its settings
 * from meta tags (the page's CSP allows no inline script), tokenizes through the SDK and asks its own
 * server to pay with the token; it never sees the card.
 */
import type { CardFields, mount, TokenizeError } from './cardhold-sdk.ts';

declare global {
  interface Window {
    Cardhold: { mount: typeof mount; TokenizeError: typeof TokenizeError };
  }
}

const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? '';

const payButton = document.getElementById('pay') as HTMLButtonElement;
const result = document.getElementById('result') as HTMLElement;

const fields: CardFields = window.Cardhold.mount({
  publishableKey: meta('cardhold-publishable-key'),
  vaultUrl: meta('cardhold-vault-url'),
  container: '#card-fields',
  style: { color: '#1a1a2e', focusColor: '#4f46e5', borderRadius: '6px', fontSize: '16px' },
  onReady: () => {
    payButton.disabled = false;
  },
});

function show(outcome: string, text: string): void {
  result.dataset['outcome'] = outcome;
  result.textContent = text;
}

payButton.addEventListener('click', async () => {
  payButton.disabled = true;
  show('pending', 'Processing…');
  try {
    const card = await fields.tokenize();
    const response = await fetch('/pay', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: card.token.id, cvv_slot: card.cvv_slot?.id ?? null }),
    });
    const payment = (await response.json()) as { status: string; id?: string; message?: string };
    if (payment.id) result.dataset['paymentIntent'] = payment.id;
    if (payment.status === 'succeeded')
      show('succeeded', `Payment succeeded: ${card.token.brand} ending ${card.token.last4}.`);
    else show('failed', payment.message ?? `Payment ${payment.status}.`);
  } catch (error) {
    show('error', (error as Error).message);
  } finally {
    payButton.disabled = false;
  }
});
