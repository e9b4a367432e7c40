import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { acquirerTestCards, allTestPans, testCards, testCvvs } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { findPans } from '../shared/pan-detect.ts';
import type { Sql } from '../storage/database.ts';

/**
 * Every table of every schema of the api's database, after flows that carry card data end to end, must
 * hold no card number and no CVV. Each row is read as row_to_json text; a bytea value (hex in that text,
 * whose random digit runs would pass for card numbers by chance) is decoded and its bytes searched as
 * text instead, which also finds a card number stored as plain bytes.
 */

const CVVS = Object.values(testCvvs);

interface Finding {
  table: string;
  kind: 'luhn-valid-run' | 'test-pan' | 'cvv-quoted' | 'cvv-after-key';
  /** Masked: never the number itself. */
  sample: string;
}

const BYTEA = /"\\\\x([0-9a-f]*)"/g;
const CVV_SLOT_ID = /cvv_[0-9A-Za-z]{22}/g;
// A quote in any escaping: JSON, JSON inside a JSON string (\" and \\\"), \u0022, HTML, single quotes.
const QUOTE = String.raw`(?:\\*"|\\*u0022|&quot;|&#34;|')`;
const CVV_KEY = `(?:cvv2?|cvc2?|cvn|csc|cid|security[_ -]?code|card[_ -]?(?:code|cvv|cvc)|verification[_ -]?value)`;
const cvvPatterns = CVVS.map((cvv) => ({
  quoted: new RegExp(`${QUOTE}${cvv}${QUOTE}`),
  // The key, then only punctuation, quotes, escapes or spaces (JSON, form, query, YAML, XML), then the value.
  afterKey: new RegExp(`${CVV_KEY}[^A-Za-z0-9]{0,24}${cvv}(?!\\d)`, 'i'),
}));

/** Undoes the escapings card data could hide behind: percent-encoding and (nested) JSON backslashes. */
function unescapings(text: string): string[] {
  const percent = text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
  const unicode = (s: string) =>
    s.replace(/\\+u([0-9A-Fa-f]{4})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  return [text, percent, unicode(text), unicode(percent).replace(/\\+/g, '')];
}

const mask = (digits: string) => `${digits.slice(0, 6)}…${digits.slice(-4)} (${digits.length} digits)`;

/** Scans one row's text (row_to_json) for card numbers and CVVs. */
export function scanRowText(table: string, rowText: string): Finding[] {
  const findings: Finding[] = [];
  const texts: string[] = [];
  // bytea values: decoded, and searched as Latin-1 and UTF-16 text.
  const withoutBytea = rowText.replace(BYTEA, (_, hex: string) => {
    const bytes = Buffer.from(hex, 'hex');
    texts.push(bytes.toString('latin1'), bytes.toString('utf16le'));
    return `"[bytea ${bytes.length}]"`;
  });
  texts.push(withoutBytea);
  for (const text of texts) {
    for (const variant of unescapings(text)) {
      for (const m of findPans(variant))
        findings.push({ table, kind: 'luhn-valid-run', sample: mask(m.digits) });
      const digitsOnly = variant.replace(/[^0-9]/g, ' ');
      for (const pan of allTestPans) {
        if (new RegExp(`(?<!\\d)${pan}(?!\\d)`).test(digitsOnly))
          findings.push({ table, kind: 'test-pan', sample: mask(pan) });
      }
      const noSlotIds = variant.replace(CVV_SLOT_ID, 'cvv_slot_id');
      for (const [i, { quoted, afterKey }] of cvvPatterns.entries()) {
        if (quoted.test(noSlotIds)) findings.push({ table, kind: 'cvv-quoted', sample: `CVV #${i + 1}` });
        if (afterKey.test(noSlotIds))
          findings.push({ table, kind: 'cvv-after-key', sample: `CVV #${i + 1}` });
      }
    }
  }
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.kind} ${f.sample}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Every base table of every schema but PostgreSQL's own, with its rows as text. */
async function dumpDatabase(sql: Sql): Promise<Map<string, string[]>> {
  const tables = await sql<{ table_schema: string; table_name: string }[]>`
    select table_schema, table_name from information_schema.tables
    where table_type = 'BASE TABLE' and table_catalog = current_database()
      and table_schema not in ('pg_catalog', 'information_schema') and table_schema not like 'pg\\_%'
    order by table_schema, table_name`;
  const out = new Map<string, string[]>();
  for (const { table_schema, table_name } of tables) {
    const rows = await sql.unsafe<{ j: string }[]>(
      `select row_to_json(t)::text as j from ${ident(table_schema)}.${ident(table_name)} t`,
    );
    out.set(
      `${table_schema}.${table_name}`,
      rows.map((r) => r.j),
    );
  }
  return out;
}

async function scanDatabase(sql: Sql): Promise<{ tables: Map<string, string[]>; findings: Finding[] }> {
  const tables = await dumpDatabase(sql);
  const findings: Finding[] = [];
  for (const [table, rows] of tables) for (const row of rows) findings.push(...scanRowText(table, row));
  return { tables, findings };
}

const report = (findings: Finding[]) =>
  findings
    .slice(0, 20)
    .map((f) => `${f.table} ${f.kind} ${f.sample}`)
    .join('\n');

describe('the card-data scan finds what it looks for', () => {
  const pan = testCards.visa;
  const [cvv3, cvv4] = CVVS as [string, string];
  const planted: Array<[string, string, Finding['kind']]> = [
    ['a bare card number', `{"note":"${pan}"}`, 'luhn-valid-run'],
    ['a grouped card number', `{"note":"card ${pan.replace(/(\d{4})(?=\d)/g, '$1 ')}"}`, 'luhn-valid-run'],
    ['a card number glued to other digits', `{"ref":"99${testCards.amex}1"}`, 'luhn-valid-run'],
    [
      'a card number in JSON kept in a text column',
      `{"body":"{\\"number\\":\\"${pan}\\"}"}`,
      'luhn-valid-run',
    ],
    [
      'a card number in bytea',
      `{"blob":"\\\\x${Buffer.from(`pan=${pan}`).toString('hex')}"}`,
      'luhn-valid-run',
    ],
    [
      'a card number in UTF-16 bytea',
      `{"blob":"\\\\x${Buffer.from(pan, 'utf16le').toString('hex')}"}`,
      'luhn-valid-run',
    ],
    ['a card number percent-encoded', `{"url":"n=%34%32${pan.slice(2)}"}`, 'luhn-valid-run'],
    ['a CVV in JSON', `{"cvv":"${cvv3}"}`, 'cvv-after-key'],
    ['a CVV as a number', `{"card":{"cvc": ${cvv4}}}`, 'cvv-after-key'],
    ['a CVV in escaped JSON', `{"body":"{\\"card_cvc\\":\\"${cvv3}\\"}"}`, 'cvv-after-key'],
    ['a CVV in doubly escaped JSON', `{"body":"{\\\\\\"cvv\\\\\\":\\\\\\"${cvv3}\\\\\\"}"}`, 'cvv-after-key'],
    ['a CVV in a form body', `{"raw":"number=x&cvc=${cvv3}&exp=12"}`, 'cvv-after-key'],
    ['a CVV percent-encoded', `{"raw":"%22security_code%22%3A%22${cvv4}%22"}`, 'cvv-after-key'],
    ['a CVV under another name', `{"x":"<CVV2>${cvv3}</CVV2>"}`, 'cvv-after-key'],
    [
      'a CVV in bytea',
      `{"blob":"\\\\x${Buffer.from(`{"cvv":"${cvv4}"}`).toString('hex')}"}`,
      'cvv-after-key',
    ],
    ['a CVV as a quoted value under any key', `{"x":"${cvv3}"}`, 'cvv-quoted'],
    ['a CVV as an escaped quoted value', `{"x":"[\\"${cvv4}\\"]"}`, 'cvv-quoted'],
    ['a CVV as a unicode-escaped quoted value', `{"x":"\\u0022${cvv3}\\u0022"}`, 'cvv-quoted'],
  ];
  for (const [what, text, kind] of planted) {
    test(`finds ${what}`, () => {
      const kinds = scanRowText('planted', text).map((f) => f.kind);
      assert.ok(kinds.includes(kind), `${kind} in ${JSON.stringify(kinds)}`);
    });
  }

  test('does not take ids, hashes, ciphertext or times for card data', () => {
    const clean = [
      // A slot id that starts with the CVV's digits is an id, not a CVV.
      `{"cvv_slot":"cvv_${cvv3}${'a'.repeat(22 - cvv3.length)}","amount":${cvv3},"n":"${cvv4}1"}`,
      `{"created_at":"2030-12-31T23:59:59.123456+00:00","amount":123456789012}`,
      // Random bytes in hex hold long digit runs; decoded, they are bytes.
      `{"hash":"\\\\x${'1234567890123456789'.repeat(3)}ab"}`,
    ];
    for (const text of clean) assert.deepEqual(scanRowText('clean', text), [], text.slice(0, 40));
    assert.ok(
      allTestPans.filter((p) => p.length >= 13).every((p) => findPans(p).length === 1),
      'every test card of 13 digits or more is found',
    );
  });
});

for (const backend of backends()) {
  describe(`the api database holds no card data after payments end to end (${backend})`, () => {
    let t: TestPlatform;
    const received: string[] = [];
    const receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on('end', () => {
        received.push(body);
        response.writeHead(200).end();
      });
    });

    before(async () => {
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      t = await startTestPlatform(backend, 'card-data-scan', {
        roles: ['vault', 'api', 'acquirer'],
        env: {
          // Well above an ordinary answer on a loaded CI machine (at 500 ms a capture was once taken for a
          // timeout there), well below the test acquirer's hang.
          CARDHOLD_FORWARD_TIMEOUT_MS: '2500',
          CARDHOLD_ACQUIRER_HANG_MS: '5000',
          CARDHOLD_RECONCILE_INTERVAL_SECONDS: '3600',
          CARDHOLD_WEBHOOK_POLL_INTERVAL_MS: '50',
        },
      });
    });
    after(async () => {
      await t?.close();
      receiver.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
    });

    const api = (path: string) => `${t.apiUrl}${path}`;
    const tokenize = async (pan: string, cvv: string) => {
      const r = await t.request<{ token: { id: string }; cvv_slot: { id: string } }>(
        'POST',
        `${t.vaultUrl}/v1/tokens`,
        { body: { pan, exp_month: 12, exp_year: futureYear, cvv, holder_name: 'Ada Lovelace' } },
      );
      assert.equal(r.status, 201, r.text);
      assert.ok(r.json.cvv_slot?.id, 'a CVV slot');
      return { token: r.json.token.id, slot: r.json.cvv_slot.id };
    };
    type Reply = { id: string; status: string; payment_intent?: string; code?: string };
    const post = (path: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      t.request<Reply>('POST', api(path), { body, headers });

    test('card flows, then every table of every schema is free of card numbers and CVVs', async () => {
      // The harness's adminSql is the api's own database (in tests, vault and api share one).
      const apiSql = t.platform.services.apiSql as Sql;
      const [ours] = await apiSql<{ db: string }[]>`select current_database() as db`;
      const [admin] = await t.adminSql<{ db: string }[]>`select current_database() as db`;
      assert.equal(admin?.db, ours?.db, 'the scan reads the api database');

      const port = (receiver.address() as AddressInfo).port;
      const endpoint = await post('/v1/webhook_endpoints', {
        url: `http://127.0.0.1:${port}/hooks`,
        enabled_events: ['*'],
      });
      assert.equal(endpoint.status, 201, endpoint.text);

      const [cvv3, cvv4] = CVVS as [string, string];
      // Approved, manual capture, with the CVV slot: captured in two parts, then refunded in two.
      const approved = await tokenize(acquirerTestCards.approve, cvv3);
      const held = await post('/v1/payment_intents', {
        amount: 5000,
        currency: 'usd',
        capture_method: 'manual',
        confirm: true,
        payment_method: approved.token,
        payment_method_options: { card: { cvc_token: approved.slot } },
        description: 'order 1001',
        metadata: { order: '1001' },
      });
      assert.equal(held.status, 200, held.text);
      assert.equal(held.json.status, 'requires_capture');
      assert.equal(
        (
          await post(`/v1/payment_intents/${held.json.id}/capture`, {
            amount_to_capture: 3000,
            final_capture: false,
          })
        ).status,
        200,
      );
      const rest = await post(`/v1/payment_intents/${held.json.id}/capture`, { amount_to_capture: 1000 });
      assert.equal(rest.json.status, 'succeeded', rest.text);
      const part = await post('/v1/refunds', { payment_intent: held.json.id, amount: 1500 });
      assert.equal(part.json.status, 'succeeded', part.text);
      const all = await post('/v1/refunds', { payment_intent: held.json.id });
      assert.equal(all.json.status, 'succeeded', all.text);

      // A four-digit CVV (amex), Stripe's form encoding, captured at once, under an idempotency key.
      const amex = await tokenize(testCards.amex, cvv4);
      const form = `amount=2500&currency=eur&confirm=true&payment_method=${amex.token}&payment_method_options[card][cvc_token]=${amex.slot}`;
      const once = await t.request<Reply>('POST', api('/v1/payment_intents'), {
        rawBody: form,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': 'scan-amex-1' },
      });
      assert.equal(once.status, 200, once.text);
      assert.equal(once.json.status, 'succeeded');
      const replay = await t.request<Reply>('POST', api('/v1/payment_intents'), {
        rawBody: form,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': 'scan-amex-1' },
      });
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.equal(replay.json.id, once.json.id);

      // Declines with their CVV slots; one under an idempotency key, so the stored answer is a decline.
      for (const [pan, key] of [
        [acquirerTestCards.insufficientFunds, 'scan-decline-1'],
        [acquirerTestCards.incorrectCvc, undefined],
      ] as const) {
        const card = await tokenize(pan, cvv3);
        const declined = await post(
          '/v1/payment_intents',
          {
            amount: 700,
            currency: 'usd',
            confirm: true,
            payment_method: card.token,
            payment_method_options: { card: { cvc_token: card.slot } },
          },
          key ? { 'idempotency-key': key } : {},
        );
        assert.equal(declined.status, 402, declined.text);
      }

      // Created, then confirmed separately with the slot; and an answer lost, settled by the reconciler.
      const later = await tokenize(testCards.mastercard, cvv3);
      const created = await post('/v1/payment_intents', { amount: 900, currency: 'gbp' });
      const confirmed = await post(`/v1/payment_intents/${created.json.id}/confirm`, {
        payment_method: later.token,
        payment_method_options: { card: { cvc_token: later.slot } },
      });
      assert.equal(confirmed.json.status, 'succeeded', confirmed.text);
      const lost = await tokenize(acquirerTestCards.unknown, cvv3);
      const processing = await post('/v1/payment_intents', {
        amount: 1100,
        currency: 'usd',
        confirm: true,
        payment_method: lost.token,
        payment_method_options: { card: { cvc_token: lost.slot } },
      });
      assert.equal(processing.json.status, 'processing', processing.text);
      await t.platform.services.reconciler?.runOnce(0);

      // Card data where it must be refused: nothing of it may be stored.
      const refused = await post('/v1/payment_intents', {
        amount: 100,
        currency: 'usd',
        metadata: { note: `${acquirerTestCards.approve} cvv ${cvv3}` },
      });
      assert.equal(refused.status, 400);

      // The webhook deliveries have been attempted, so their rows and attempt log exist.
      const until = Date.now() + 15_000;
      for (;;) {
        const [pending] = await t.adminSql<{ n: number }[]>`
          select count(*)::int as n from webhooks.deliveries where status = 'pending'`;
        const [done] = await t.adminSql<{ n: number }[]>`
          select count(*)::int as n from webhooks.delivery_attempts`;
        if (pending?.n === 0 && (done?.n ?? 0) > 0) break;
        assert.ok(Date.now() < until, 'webhook deliveries attempted');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(received.length > 0);

      const { tables, findings } = await scanDatabase(t.adminSql as unknown as Sql);
      assert.deepEqual(findings, [], `card data in the database:\n${report(findings)}`);

      // The scan covered the tables these flows write, and they are not empty.
      for (const table of [
        'payments.payment_intents',
        'payments.attempts',
        'payments.refunds',
        'payments.idempotency_keys',
        'webhooks.endpoints',
        'webhooks.events',
        'webhooks.deliveries',
        'webhooks.delivery_attempts',
        'audit.records',
      ]) {
        assert.ok((tables.get(table)?.length ?? 0) > 0, `${table} scanned and not empty`);
      }
      assert.ok(tables.size >= 20, `${tables.size} tables scanned`);
      const stored = (tables.get('payments.idempotency_keys') ?? []).join('\n');
      assert.ok(stored.includes(once.json.id), 'the stored idempotent answer was scanned');
    });

    test('a card number and a CVV planted in a table of a new schema are found, by table', async () => {
      const sql = t.adminSql;
      const [cvv3, cvv4] = CVVS as [string, string];
      await sql`create schema scan_canary`;
      try {
        await sql`create table scan_canary.planted (note text, doc jsonb, blob bytea)`;
        await sql`insert into scan_canary.planted values
          (${`for ${testCards.mastercard} only`}, ${sql.json({ card: { cvc: cvv3 } })}, null),
          (null, null, ${Buffer.from(`cvv=${cvv4};pan=${testCards.visa13}`)})`;
        const { findings } = await scanDatabase(sql as unknown as Sql);
        const kinds = new Set(findings.map((f) => f.kind));
        assert.ok(
          findings.every((f) => f.table === 'scan_canary.planted'),
          `only the planted rows: ${report(findings)}`,
        );
        for (const kind of ['luhn-valid-run', 'test-pan', 'cvv-after-key', 'cvv-quoted'] as const)
          assert.ok(kinds.has(kind), `found as ${kind}`);
        assert.ok(
          findings.some((f) => f.sample.startsWith(testCards.visa13.slice(0, 6))),
          'found in bytea',
        );
        assert.ok(!report(findings).includes(testCards.mastercard), 'the report masks the number');
      } finally {
        await sql`drop schema scan_canary cascade`;
      }
      assert.deepEqual((await scanDatabase(sql as unknown as Sql)).findings, [], 'clean again');
    });
  });
}
