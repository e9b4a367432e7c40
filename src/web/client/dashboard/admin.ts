import { call, vaultAvailable } from './api.ts';
import { facts, h, isoWhen, table } from './dom.ts';
import { needsMerchant, notify, type View } from './view.ts';

interface AuditRecord {
  seq: string | null;
  time: string;
  actor: { type: string; id: string };
  action: string;
  resource: { type: string; id: string };
  merchant_id: string | null;
  outcome: string;
  reason: string | null;
  service: string;
}
interface Verification {
  ok: boolean;
  records_checked: number;
  checkpoints_checked: number;
  first_problem: { kind: string; detail: string; seq?: string } | null;
  problems_total: number;
}

const localInput = (date: Date) =>
  new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

/**
 * The audit trail: a time range read from the api (itself audited as audit.read), narrowed here by
 * action, outcome and actor, and the live result of verifying the whole chain (audit.verify).
 */
export async function auditView(v: View, params: URLSearchParams): Promise<void> {
  const to = params.get('to') ? new Date(params.get('to') as string) : new Date(Date.now() + 60_000);
  const from = params.get('from')
    ? new Date(params.get('from') as string)
    : new Date(to.getTime() - 24 * 3600_000);
  const query = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), limit: '1000' });
  const [page, verification] = await Promise.all([
    call<{ data: AuditRecord[]; has_more: boolean }>('api', 'GET', `/v1/admin/audit/records?${query}`),
    call<Verification>('api', 'POST', '/v1/admin/audit/verify', {}),
  ]);
  const action = params.get('action') ?? '';
  const outcome = params.get('outcome') ?? '';
  const actor = params.get('actor') ?? '';
  const shown = page.data
    .filter(
      (r) =>
        (!action || r.action.startsWith(action)) &&
        (!outcome || r.outcome === outcome) &&
        (!actor || r.actor.id.includes(actor)),
    )
    .reverse();
  const input = (name: string, label: string, value: string, type = 'text') =>
    h('label', {}, `${label} `, h('input', { name, type, value, id: `audit-${name}` }));
  const form = h(
    'form',
    {
      class: 'inline',
      id: 'audit-filters',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const data = new FormData(event.target as HTMLFormElement);
        const next = new URLSearchParams();
        for (const [key, value] of data) if (typeof value === 'string' && value) next.set(key, value);
        for (const key of ['from', 'to'])
          if (next.get(key)) next.set(key, new Date(next.get(key) as string).toISOString());
        location.hash = `#/audit?${next}`;
      },
    },
    input('from', 'From', localInput(from), 'datetime-local'),
    input('to', 'To', localInput(to), 'datetime-local'),
    input('action', 'Action', action),
    h(
      'label',
      {},
      'Outcome ',
      h(
        'select',
        { name: 'outcome', id: 'audit-outcome' },
        ...['', 'success', 'failure'].map((o) =>
          h('option', { value: o, selected: o === outcome }, o || 'any'),
        ),
      ),
    ),
    input('actor', 'Actor', actor),
    h('button', { type: 'submit' }, 'Filter'),
  );
  v.loaded(
    h(
      'div',
      { id: 'verification', class: verification.ok ? 'ok' : 'bad', role: 'status' },
      verification.ok
        ? `Chain verified: ${verification.records_checked} records, ${verification.checkpoints_checked} checkpoints, no problem.`
        : `Chain verification FAILED: ${verification.problems_total} problem(s); first: ${verification.first_problem?.kind ?? '?'} at record ${verification.first_problem?.seq ?? '?'} (${verification.first_problem?.detail ?? ''}).`,
    ),
    form,
    h(
      'p',
      {},
      `${shown.length} of ${page.data.length} records${page.has_more ? ' (more in this range: narrow it)' : ''}.`,
    ),
    table(
      ['Seq', 'Time', 'Actor', 'Action', 'Resource', 'Merchant', 'Outcome', 'Reason', 'Service'],
      shown.map((r) => [
        r.seq ?? '—',
        isoWhen(r.time),
        `${r.actor.type}:${r.actor.id}`,
        r.action,
        `${r.resource.type}:${r.resource.id}`,
        r.merchant_id ?? '—',
        r.outcome,
        r.reason ?? '—',
        r.service,
      ]),
      'Audit records',
    ),
  );
}

interface KeyStatus {
  merchant_id: string | null;
  purpose: string;
  key: string;
  version: number;
  age_days: number;
  cryptoperiod_days: number;
  period_ends_at: string;
  status: string;
}
interface InventoryItem {
  id: string;
  purpose: string;
  algorithm: string;
  strength_bits: number;
  provider: string;
  environment: string;
  created_at: string | null;
  expires_at: string | null;
  state: string;
}

/** Key status against cryptoperiods and the inventory, from the vault (keys:admin). */
export async function keysView(v: View): Promise<void> {
  if (!vaultAvailable()) {
    v.loaded(h('p', {}, 'The vault’s address is not configured (CARDHOLD_DASHBOARD_VAULT_URL).'));
    return;
  }
  const [status, inventory] = await Promise.all([
    call<{ data: KeyStatus[]; warn_days: number }>('vault', 'GET', '/v1/keys/status'),
    call<{ data: InventoryItem[] }>('vault', 'GET', '/v1/keys/inventory'),
  ]);
  v.loaded(
    h('h3', {}, 'Cryptoperiods'),
    h('p', {}, `Warning ${status.warn_days} days before a period ends.`),
    table(
      ['Merchant', 'Key', 'Purpose', 'Version', 'Age (days)', 'Period (days)', 'Period ends', 'Status'],
      status.data.map((k) => [
        k.merchant_id ?? '(deployment)',
        k.key,
        k.purpose,
        String(k.version),
        String(k.age_days),
        String(k.cryptoperiod_days),
        isoWhen(k.period_ends_at),
        h('span', { class: `status-${k.status}` }, k.status),
      ]),
      'Key status',
    ),
    h('h3', {}, 'Inventory'),
    table(
      ['Id', 'Purpose', 'Algorithm', 'Bits', 'Provider', 'Environment', 'Created', 'Expires', 'State'],
      inventory.data.map((i) => [
        i.id,
        i.purpose,
        i.algorithm,
        String(i.strength_bits),
        i.provider,
        i.environment,
        isoWhen(i.created_at),
        isoWhen(i.expires_at),
        i.state,
      ]),
      'Key inventory',
    ),
  );
}

interface Endpoint {
  id: string;
  url: string;
  enabled_events: string[];
  status?: string;
  created_at?: string;
}
interface Delivery {
  id: string;
  event_type: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
}

export async function webhooksView(v: View): Promise<void> {
  if (needsMerchant(v)) return;
  const page = await call<{ data: Endpoint[] }>('api', 'GET', '/v1/webhook_endpoints?limit=100');
  v.loaded(
    page.data.length === 0
      ? h('p', {}, 'No webhook endpoints.')
      : table(
          ['Endpoint', 'URL', 'Events', 'Created'],
          page.data.map((e) => [
            h('a', { href: `#/webhooks/${e.id}` }, e.id),
            e.url,
            e.enabled_events.join(', '),
            isoWhen(e.created_at),
          ]),
          'Webhook endpoints',
        ),
  );
}

export async function deliveriesView(v: View, endpointId: string, rerender: () => void): Promise<void> {
  if (needsMerchant(v)) return;
  const id = encodeURIComponent(endpointId);
  const [endpoint, deliveries] = await Promise.all([
    call<Endpoint>('api', 'GET', `/v1/webhook_endpoints/${id}`),
    call<{ data: Delivery[] }>('api', 'GET', `/v1/webhook_endpoints/${id}/deliveries?limit=100`),
  ]);
  const retry = (delivery: Delivery) =>
    h(
      'button',
      {
        type: 'button',
        'data-delivery': delivery.id,
        onclick: async () => {
          try {
            await call('api', 'POST', `/v1/webhook_deliveries/${encodeURIComponent(delivery.id)}/retry`);
            notify(`Delivery ${delivery.id} sent again.`);
          } catch (error) {
            notify(`Retry refused: ${(error as Error).message}`, 'error');
          }
          rerender();
        },
      },
      'Retry',
    );
  v.loaded(
    facts([
      ['Endpoint', endpoint.id],
      ['URL', endpoint.url],
      ['Events', endpoint.enabled_events.join(', ')],
    ]),
    h('h3', {}, 'Deliveries'),
    deliveries.data.length === 0
      ? h('p', {}, 'No deliveries.')
      : table(
          ['Delivery', 'Event', 'Status', 'Attempts', 'Last answer', 'Next attempt', 'Created', ''],
          deliveries.data.map((d) => [
            d.id,
            d.event_type,
            d.status,
            String(d.attempts),
            d.last_status_code ? String(d.last_status_code) : (d.last_error ?? '—'),
            isoWhen(d.next_attempt_at),
            isoWhen(d.created_at),
            d.status === 'succeeded' ? '' : retry(d),
          ]),
          'Deliveries',
        ),
  );
}

interface ScanReport {
  configured: boolean;
  available: boolean;
  file_modified_at: string | null;
  generated_at: string | null;
  result: 'pass' | 'fail' | null;
  fail_on: string | null;
  summary: Record<string, unknown> | null;
  findings: Array<{
    rule_id: string;
    severity: string;
    title: string;
    message: string;
    file: string;
    line: number;
    waived: boolean;
  }>;
}

export async function scanView(v: View): Promise<void> {
  const report = await call<ScanReport>('api', 'GET', '/v1/admin/scan-report');
  if (!report.configured) {
    v.loaded(
      h(
        'p',
        { id: 'scan-none' },
        'No scan report is configured (CARDHOLD_SCAN_REPORT_FILE, written by cardhold scan --format json).',
      ),
    );
    return;
  }
  if (!report.available) {
    v.loaded(
      h(
        'p',
        { id: 'scan-none' },
        'The configured scan report is missing or is not a cardhold scan JSON report.',
      ),
    );
    return;
  }
  const summary = report.summary ?? {};
  const severities = (summary['bySeverity'] ?? {}) as Record<string, number>;
  v.loaded(
    facts([
      [
        'Result',
        h(
          'strong',
          { id: 'scan-result', class: report.result === 'pass' ? 'ok' : 'bad' },
          report.result ?? '?',
        ),
      ],
      ['Generated', isoWhen(report.generated_at)],
      ['Fails on', report.fail_on ?? '—'],
      [
        'Findings',
        `${String(summary['findings'] ?? report.findings.length)} (${String(summary['unwaived'] ?? '?')} not waived)`,
      ],
      [
        'By severity',
        Object.entries(severities)
          .map(([s, n]) => `${s}: ${n}`)
          .join(', '),
      ],
    ]),
    table(
      ['Severity', 'Rule', 'Title', 'Where', 'Message', 'Waived'],
      report.findings.map((f) => [
        f.severity,
        f.rule_id,
        f.title,
        `${f.file}:${f.line}`,
        f.message,
        f.waived ? 'yes' : '',
      ]),
      'Findings',
    ),
  );
}
