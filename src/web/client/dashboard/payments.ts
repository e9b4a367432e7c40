import { call, holds } from './api.ts';
import { facts, h, money, table, when } from './dom.ts';
import { needsMerchant, notify, type View } from './view.ts';

interface Payment {
  id: string;
  amount: number;
  amount_capturable: number;
  amount_received: number;
  amount_refunded: number;
  currency: string;
  status: string;
  capture_method: string;
  payment_method: string | null;
  card: { brand: string; last4: string } | null;
  connector: string | null;
  created: number;
  cancellation_reason: string | null;
}
interface Attempt {
  id: string;
  kind: string;
  connector: string;
  amount: number | null;
  status: string;
  decline_code: string | null;
  error_code: string | null;
  created: number;
}
interface Refund {
  id: string;
  amount: number;
  currency: string;
  status: string;
  reason: string | null;
  created: number;
}
interface List<T> {
  data: T[];
  has_more: boolean;
}

const link = (href: string, text: string) => h('a', { href }, text);

export async function paymentsList(v: View, status: string): Promise<void> {
  if (needsMerchant(v)) return;
  const query = new URLSearchParams({ limit: '50', ...(status ? { status } : {}) });
  const page = await call<List<Payment>>('api', 'GET', `/v1/payment_intents?${query}`);
  const filter = h(
    'select',
    {
      id: 'payment-status',
      'aria-label': 'Status',
      onchange: (event: Event) => {
        const chosen = (event.target as HTMLSelectElement).value;
        location.hash = chosen ? `#/payments?status=${chosen}` : '#/payments';
      },
    },
    ...['', 'requires_capture', 'succeeded', 'canceled', 'requires_payment_method', 'processing'].map(
      (value) => h('option', { value, selected: value === status }, value || 'any status'),
    ),
  );
  v.loaded(
    h('label', {}, 'Status ', filter),
    page.data.length === 0
      ? h('p', {}, 'No payments.')
      : table(
          ['Payment', 'Amount', 'Status', 'Card', 'Created'],
          page.data.map((p) => [
            link(`#/payments/${p.id}`, p.id),
            money(p.amount, p.currency),
            p.status,
            p.card ? `${p.card.brand} •••• ${p.card.last4}` : '—',
            when(p.created),
          ]),
          'Payments',
        ),
  );
}

export async function paymentDetail(v: View, id: string, rerender: () => void): Promise<void> {
  if (needsMerchant(v)) return;
  const path = `/v1/payment_intents/${encodeURIComponent(id)}`;
  const [payment, attempts, refunds] = await Promise.all([
    call<Payment>('api', 'GET', path),
    call<List<Attempt>>('api', 'GET', `${path}/attempts`),
    call<List<Refund>>(
      'api',
      'GET',
      `/v1/refunds?${new URLSearchParams({ payment_intent: id, limit: '100' })}`,
    ),
  ]);
  const act = (label: string, run: () => Promise<unknown>) =>
    h(
      'button',
      {
        type: 'button',
        onclick: async (event: Event) => {
          (event.target as HTMLButtonElement).disabled = true;
          try {
            await run();
            notify(`${label}: done.`);
          } catch (error) {
            notify(`${label} refused: ${(error as Error).message}`, 'error');
          }
          rerender();
        },
      },
      label,
    );
  const actions = h('div', { class: 'actions', 'aria-label': 'Actions' });
  // Offered only to roles that may; the api refuses the others whatever the page shows.
  if (holds('payments:write') && payment.status === 'requires_capture') {
    actions.append(act('Capture', () => call('api', 'POST', `${path}/capture`, {}, { idempotent: true })));
  }
  if (
    holds('payments:write') &&
    ['requires_capture', 'requires_confirmation', 'requires_payment_method'].includes(payment.status)
  ) {
    actions.append(act('Cancel', () => call('api', 'POST', `${path}/cancel`, {}, { idempotent: true })));
  }
  const refundable = payment.amount_received - payment.amount_refunded;
  if (holds('refunds:write') && refundable > 0) {
    const amount = h('input', {
      id: 'refund-amount',
      type: 'number',
      min: '1',
      max: String(refundable),
      value: String(refundable),
      'aria-label': 'Refund amount (minor units)',
    });
    actions.append(
      h('label', {}, 'Amount ', amount),
      act('Refund', () =>
        call(
          'api',
          'POST',
          '/v1/refunds',
          { payment_intent: id, amount: Number(amount.value) },
          { idempotent: true },
        ),
      ),
    );
  }
  v.loaded(
    facts([
      ['Payment', payment.id],
      ['Status', h('span', { id: 'payment-state' }, payment.status)],
      ['Amount', money(payment.amount, payment.currency)],
      ['Capturable', money(payment.amount_capturable, payment.currency)],
      ['Received', money(payment.amount_received, payment.currency)],
      ['Refunded', money(payment.amount_refunded, payment.currency)],
      ['Capture', payment.capture_method],
      ['Card', payment.card ? `${payment.card.brand} •••• ${payment.card.last4}` : '—'],
      ['Token', payment.payment_method ?? '—'],
      ['Connector', payment.connector ?? '—'],
      ['Created', when(payment.created)],
    ]),
    actions.childElementCount > 0 ? actions : null,
    h('h3', {}, 'Attempts'),
    table(
      ['Attempt', 'Kind', 'Connector', 'Amount', 'Status', 'Decline / error', 'Created'],
      attempts.data.map((a) => [
        a.id,
        a.kind,
        a.connector,
        a.amount === null ? '—' : money(a.amount, payment.currency),
        a.status,
        a.decline_code ?? a.error_code ?? '—',
        when(a.created),
      ]),
      'Attempts',
    ),
    h('h3', {}, 'Refunds'),
    refunds.data.length === 0
      ? h('p', {}, 'No refunds.')
      : table(
          ['Refund', 'Amount', 'Status', 'Reason', 'Created'],
          refunds.data.map((r) => [
            r.id,
            money(r.amount, r.currency),
            r.status,
            r.reason ?? '—',
            when(r.created),
          ]),
          'Refunds',
        ),
  );
}
