import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testCards } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';

interface Page {
  data: { id: string }[];
  has_more: boolean;
}

/**
 * Every list pages with `starting_after` on (created_at, id). PostgreSQL keeps microseconds and a
 * JavaScript Date only milliseconds, so a cursor carried through a Date would skip the rows created
 * later in its millisecond. Rows made in one millisecond, microseconds apart, must each come exactly once.
 */
for (const backend of backends()) {
  describe(`paging through rows created within one millisecond (${backend})`, () => {
    let t: TestPlatform;
    const made = {
      payments: [] as string[],
      refunds: [] as string[],
      tokens: [] as string[],
      endpoints: [] as string[],
    };

    before(async () => {
      t = await startTestPlatform(backend, 'pagination', { roles: ['vault', 'api', 'acquirer'] });
      const token = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
        body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
      });
      assert.equal(token.status, 201, token.text);
      made.tokens.push(token.json.token.id);
      for (let i = 0; i < 4; i++) {
        const more = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
          body: { pan: testCards.mastercard, exp_month: 1 + i, exp_year: futureYear },
        });
        assert.equal(more.status, 201, more.text);
        made.tokens.push(more.json.token.id);
      }
      const paid = await t.request<{ id: string; status: string }>('POST', `${t.apiUrl}/v1/payment_intents`, {
        body: { amount: 5000, currency: 'usd', payment_method: made.tokens[0], confirm: true },
      });
      assert.equal(paid.json.status, 'succeeded', paid.text);
      made.payments.push(paid.json.id);
      for (let i = 0; i < 4; i++) {
        const p = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/payment_intents`, {
          body: { amount: 100 + i, currency: 'usd' },
        });
        made.payments.push(p.json.id);
        const r = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/refunds`, {
          body: { payment_intent: paid.json.id, amount: 100 },
        });
        assert.equal(r.status, 200, r.text);
        made.refunds.push(r.json.id);
        const e = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/webhook_endpoints`, {
          body: { url: `https://example.com/hooks/${i}`, enabled_events: ['*'] },
        });
        assert.equal(e.status, 201, e.text);
        made.endpoints.push(e.json.id);
      }
      // All of a kind into one millisecond, 100 µs apart, in an order unlike their ids'. Sent as text:
      // postgres.js would pass a timestamptz parameter through a Date, cutting it to milliseconds.
      const base = '2030-01-01 00:00:00.123';
      for (const [table, ids] of [
        ['payments.payment_intents', made.payments],
        ['payments.refunds', made.refunds],
        ['vault.tokens', made.tokens],
        ['webhooks.endpoints', made.endpoints],
      ] as const) {
        for (const [i, id] of ids.entries()) {
          await t.adminSql`
            update ${t.adminSql(table)} set created_at = ${`${base}${(i * 7) % 10}00+00`}::text::timestamptz
            where id = ${id}`;
        }
      }
    });
    after(async () => {
      await t?.close();
    });

    const everyPage = async (url: string, limit: number) => {
      const seen: string[] = [];
      let after: string | undefined;
      for (let pages = 0; pages < 50; pages++) {
        const sep = url.includes('?') ? '&' : '?';
        const r = await t.request<Page>(
          'GET',
          `${url}${sep}limit=${limit}${after ? `&starting_after=${after}` : ''}`,
        );
        assert.equal(r.status, 200, r.text);
        seen.push(...r.json.data.map((row) => row.id));
        if (!r.json.has_more) return seen;
        after = r.json.data.at(-1)?.id;
      }
      assert.fail('more than 50 pages');
    };

    for (const [name, path, key] of [
      ['payments', '/v1/payment_intents', 'payments'],
      ['refunds', '/v1/refunds', 'refunds'],
      ['tokens', '/v1/tokens', 'tokens'],
      ['webhook endpoints', '/v1/webhook_endpoints', 'endpoints'],
    ] as const) {
      test(`${name}: every row exactly once, one or two to a page`, async () => {
        const url = `${name === 'tokens' ? t.vaultUrl : t.apiUrl}${path}`;
        const all = await everyPage(url, 100);
        for (const id of made[key]) assert.ok(all.includes(id), `${id} listed`);
        for (const limit of [1, 2]) {
          assert.deepEqual(await everyPage(url, limit), all, `limit ${limit}`);
        }
      });
    }
  });
}
