import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testCards } from '../../test/fixtures/cards.ts';
import { startTestPlatform, type TestPlatform } from '../../test/harness.ts';

interface Problem {
  code: string;
  field?: string;
}

/**
 * Text the database cannot keep (a lone surrogate, a NUL), URLs that cannot be decoded and path
 * segments too long are the caller's errors: 400 problems naming the field, never a 500, never a quote
 * of the URL, and never a response stored under an idempotency key.
 */
describe('ill-formed text and URLs in requests', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform('external', 'request-text');
  });
  after(async () => {
    await t?.close();
  });

  const postRaw = (url: string, rawBody: string, headers: Record<string, string> = {}) =>
    t.request<Problem & { id?: string }>('POST', url, {
      rawBody,
      headers: { 'content-type': 'application/json', ...headers },
    });

  test('a lone surrogate or a NUL anywhere in a JSON body is a 400 naming the field', async () => {
    // The rest of a payment body after `{"amount":100,"currency":"usd",`, and the field at fault.
    const payments: [string, string][] = [
      ['"metadata":{"a":"\\ud800"}}', 'metadata.a'],
      ['"metadata":{"\\udfff":"x"}}', 'metadata.*'],
      ['"description":"x\\ud800y"}', 'description'],
      ['"description":"nul \\u0000 here"}', 'description'],
    ];
    const cases: [string, string, string][] = [
      ...payments.map(([rest, field]): [string, string, string] => [
        `${t.apiUrl}/v1/payment_intents`,
        `{"amount":100,"currency":"usd",${rest}`,
        field,
      ]),
      [
        `${t.vaultUrl}/v1/tokens`,
        `{"pan":"${testCards.visa}","exp_month":12,"exp_year":2031,"holder_name":"A\\u0000B"}`,
        'holder_name',
      ],
    ];
    for (const [url, body, field] of cases) {
      const r = await postRaw(url, body);
      assert.equal(r.status, 400, `${body}: ${r.text}`);
      assert.deepEqual([r.json.code, r.json.field], ['request_invalid', field], body);
    }
    const tokens = await t.adminSql<{ n: number }[]>`select count(*)::int as n from vault.tokens`;
    assert.equal(tokens[0]?.n, 0, 'nothing written');
  });

  test('such a request does not use up its idempotency key', async () => {
    const headers = { 'idempotency-key': 'order-surrogate-1' };
    const bad = await postRaw(
      `${t.apiUrl}/v1/payment_intents`,
      '{"amount":100,"currency":"usd","metadata":{"a":"\\ud800"}}',
      headers,
    );
    assert.equal(bad.status, 400);
    const good = await postRaw(
      `${t.apiUrl}/v1/payment_intents`,
      '{"amount":100,"currency":"usd","metadata":{"a":"b"}}',
      headers,
    );
    assert.equal(good.status, 200, good.text);
    assert.equal(good.headers.get('idempotent-replayed'), null);
  });

  test('a NUL in a query parameter is a 400 naming it', async () => {
    const r = await t.request<Problem>('GET', `${t.apiUrl}/v1/payment_intents?starting_after=pi_%00`);
    assert.equal(r.status, 400, r.text);
    assert.deepEqual([r.json.code, r.json.field], ['request_invalid', 'starting_after']);
  });

  test('a URL that cannot be decoded, or a path segment too long, is a problem that never quotes the URL', async () => {
    for (const [url, detail] of [
      [`${t.vaultUrl}/v1/tokens/${testCards.visa}%ZZ`, 'The URL is malformed'],
      [`${t.vaultUrl}/v1/tokens/${testCards.visa}${'7'.repeat(200)}`, 'A path segment is too long'],
    ] as const) {
      const r = await t.request<Problem & { detail: string }>('GET', url);
      assert.equal(r.status, 400, r.text);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.deepEqual([r.json.code, r.json.field, r.json.detail], ['request_invalid', 'url', detail]);
      assert.ok(!r.text.includes(testCards.visa.slice(0, 8)), 'the URL is not quoted');
      assert.equal(r.headers.get('cache-control'), 'no-store');
    }
  });
});
