import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testCards } from '../../test/fixtures/cards.ts';
import { futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';

/**
 * Writers on several lanes commit out of clock order, so a record with a later sequence number can carry
 * an earlier time. Paging with after_seq must still give every record of the range exactly once.
 */
describe('paging audit records with after_seq', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform('external', 'audit-paging');
  });
  after(async () => {
    await t?.close();
  });

  test('every record of the range once, in sequence order, even where time and sequence disagree', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await t.request('POST', `${t.vaultUrl}/v1/tokens`, {
        body: { pan: testCards.visa, exp_month: 1 + i, exp_year: futureYear },
      });
      assert.equal(r.status, 201, r.text);
    }
    const to = new Date(Date.now() + 1000);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // Make time and sequence disagree, as concurrent lanes do: the newest records get the oldest times.
    // (This test database is its own; its chain is not verified afterwards.)
    await t.adminSql.begin(async (tx) => {
      await tx`alter table audit.records disable trigger records_append_only`;
      await tx`
        update audit.records set occurred_at = occurred_at - (interval '1 millisecond' * (seq % 5) * 40)
        where seq in (select seq from audit.records order by seq desc limit 10)`;
      await tx`alter table audit.records enable trigger records_append_only`;
    });
    const expected = (
      await t.adminSql<
        { seq: string }[]
      >`select seq::text as seq from audit.records r where r.occurred_at < ${to} order by r.seq`
    ).map((r) => r.seq);
    const inversions = await t.adminSql<{ n: number }[]>`
      select count(*)::int as n from audit.records a join audit.records b
        on b.seq > a.seq and b.occurred_at < a.occurred_at where a.occurred_at < ${to} and b.occurred_at < ${to}`;
    assert.ok((inversions[0]?.n ?? 0) > 0, 'the range has records whose time and sequence disagree');
    const seen: string[] = [];
    let afterSeq: string | undefined;
    const from = new Date(Date.now() - 3600_000).toISOString();
    for (let page = 0; page < 100; page++) {
      const r = await t.request<{ data: { seq: string | number }[]; has_more: boolean }>(
        'GET',
        `${t.apiUrl}/v1/admin/audit/records?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to.toISOString())}&limit=3${afterSeq ? `&after_seq=${afterSeq}` : ''}`,
        { key: t.adminToken },
      );
      assert.equal(r.status, 200, r.text);
      seen.push(...r.json.data.map((d) => String(d.seq)));
      if (!r.json.has_more) break;
      afterSeq = seen.at(-1);
    }
    assert.deepEqual(seen, expected);
  });
});
