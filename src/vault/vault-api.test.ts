import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { allTestPans, testCards, testCvvs } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { luhnValid } from '../shared/pan-detect.ts';
import { Secret } from '../shared/secret.ts';
import { MemoryVolatileStore } from '../storage/memory-volatile-store.ts';
import { CvvSlots } from './cvv-slots.ts';

interface TokenizeReply {
  token: {
    id: string;
    alias: string | null;
    bin: string;
    last4: string;
    brand: string;
    fingerprint: string;
    exp_year: number;
  };
  deduplicated: boolean;
  cvv_slot: { id: string; uses_remaining: number; expires_at: string } | null;
}
interface Problem {
  type: string;
  code: string;
  status: number;
  field?: string;
  errors?: Array<{ field: string }>;
}

const card = (pan: string, extra: Record<string, unknown> = {}) => ({
  pan,
  exp_month: 12,
  exp_year: futureYear,
  ...extra,
});

/** Every value of every row of every cardhold table, as text and as hex, for raw-byte searches. */
async function dumpDatabase(t: TestPlatform): Promise<string> {
  const tables = await t.adminSql<{ schema: string; name: string }[]>`
    select table_schema as schema, table_name as name from information_schema.tables
    where table_schema in ('vault', 'identity', 'cardhold_meta') and table_type = 'BASE TABLE'`;
  let out = '';
  for (const { schema, name } of tables) {
    const rows = await t.adminSql.unsafe(`select * from ${schema}.${name}`);
    for (const row of rows) {
      for (const value of Object.values(row)) {
        if (Buffer.isBuffer(value)) out += `${value.toString('latin1')}\n${value.toString('hex')}\n`;
        else out += `${JSON.stringify(value)}\n`;
      }
    }
  }
  return out;
}

const hex = (s: string) => Buffer.from(s).toString('hex');

for (const backend of backends()) {
  describe(`vault API (${backend})`, () => {
    let t: TestPlatform;
    const tokens = () => `${t.vaultUrl}/v1/tokens`;

    before(async () => {
      t = await startTestPlatform(backend, 'vault-api');
    });
    after(async () => {
      await t?.close();
    });

    test('tokenize then read returns only BIN and last four; the row holds no PAN', async () => {
      const created = await t.request<TokenizeReply>('POST', tokens(), {
        body: card(testCards.visa, { holder_name: 'Ada Lovelace' }),
      });
      assert.equal(created.status, 201);
      assert.equal(created.json.token.bin, '42424242');
      assert.equal(created.json.token.last4, '4242');
      assert.equal(created.json.token.brand, 'visa');
      assert.match(created.json.token.id, /^tok_[0-9A-Za-z]{22}$/);
      assert.ok(!created.text.includes(testCards.visa), 'the tokenize response must not contain the PAN');

      const read = await t.request<Record<string, unknown>>('GET', `${tokens()}/${created.json.token.id}`);
      assert.equal(read.status, 200);
      assert.deepEqual(Object.keys(read.json).sort(), [
        'alias',
        'bin',
        'brand',
        'created_at',
        'exp_month',
        'exp_year',
        'expires_at',
        'fingerprint',
        'id',
        'last4',
        'object',
      ]);
      assert.ok(!read.text.includes(testCards.visa), 'the read response must not contain the PAN');
      assert.ok(!read.text.includes('Ada Lovelace'), 'the holder name is encrypted, not displayed');

      const dump = await dumpDatabase(t);
      assert.ok(!dump.includes(testCards.visa), 'no table holds the PAN as text or bytes');
      assert.ok(!dump.includes(hex(testCards.visa)), 'no table holds the PAN bytes (hex search)');
      assert.ok(!dump.includes('Ada Lovelace'), 'no table holds the holder name in clear');

      // The vault itself can still open it (what the forward proxy will use).
      const revealed = await t.platform.services.vault!.tokens.reveal(
        t.access,
        created.json.token.id,
        'test',
      );
      assert.ok(revealed.pan.expose() === testCards.visa, 'reveal decrypts the stored PAN');
      assert.equal(String(revealed.pan), '[REDACTED]');
    });

    test('delete crypto-shreds: the token is unreadable and its wrapped data key is gone', async () => {
      const created = await t.request<TokenizeReply>('POST', tokens(), { body: card(testCards.mastercard) });
      const id = created.json.token.id;
      const before = await t.adminSql`select wrapped_dek from vault.tokens where id = ${id}`;
      assert.equal(before.length, 1);
      const deleted = await t.request('DELETE', `${tokens()}/${id}`);
      assert.equal(deleted.status, 204);
      const read = await t.request<Problem>('GET', `${tokens()}/${id}`);
      assert.equal(read.status, 404);
      assert.equal(read.json.code, 'token_not_found');
      const afterRows = await t.adminSql`select 1 from vault.tokens where id = ${id}`;
      assert.equal(afterRows.length, 0, 'row and wrapped data key are deleted');
      await assert.rejects(t.platform.services.vault!.tokens.reveal(t.access, id, 'test'), {
        code: 'token_not_found',
      });
      const again = await t.request<Problem>('DELETE', `${tokens()}/${id}`);
      assert.equal(again.status, 404);
    });

    test('dedup returns the same token; another merchant gets a different fingerprint', async () => {
      const first = await t.request<TokenizeReply>('POST', tokens(), {
        body: card(testCards.amex, { dedup: true }),
      });
      const second = await t.request<TokenizeReply>('POST', tokens(), {
        body: card(testCards.amex, { dedup: true }),
      });
      assert.equal(first.status, 201);
      assert.equal(second.status, 200);
      assert.equal(second.json.deduplicated, true);
      assert.equal(second.json.token.id, first.json.token.id);
      const without = await t.request<TokenizeReply>('POST', tokens(), { body: card(testCards.amex) });
      assert.notEqual(without.json.token.id, first.json.token.id, 'without dedup a new token is issued');
      assert.equal(
        without.json.token.fingerprint,
        first.json.token.fingerprint,
        'same merchant, same fingerprint',
      );

      const other = await t.request<{ api_key: { secret: string } }>('POST', `${t.apiUrl}/v1/merchants`, {
        key: t.adminToken,
        body: { name: 'Other merchant' },
      });
      assert.equal(other.status, 201);
      const otherKey = other.json.api_key.secret;
      const theirs = await t.request<TokenizeReply>('POST', tokens(), {
        key: otherKey,
        body: card(testCards.amex, { dedup: true }),
      });
      assert.equal(theirs.status, 201, 'dedup never crosses merchants');
      assert.notEqual(theirs.json.token.fingerprint, first.json.token.fingerprint);
      // Tenant isolation: a foreign token answers exactly like a missing one.
      const foreign = await t.request<Problem>('GET', `${tokens()}/${first.json.token.id}`, {
        key: otherKey,
      });
      assert.equal(foreign.status, 404);
      assert.equal(foreign.json.code, 'token_not_found');
      const search = await t.request<{ data: unknown[] }>(
        'GET',
        `${tokens()}?fingerprint=${first.json.token.fingerprint}`,
        { key: otherKey },
      );
      assert.equal(search.json.data.length, 0);
    });

    test('concurrent dedup requests for one card create exactly one token', async () => {
      const replies = await Promise.all(
        Array.from({ length: 8 }, () =>
          t.request<TokenizeReply>('POST', tokens(), { body: card(testCards.jcb, { dedup: true }) }),
        ),
      );
      const ids = new Set(replies.map((r) => r.json.token.id));
      assert.equal(ids.size, 1);
      assert.equal(replies.filter((r) => r.status === 201).length, 1);
    });

    test('a changed ciphertext, AAD, key version or wrapped key is refused with no data', async () => {
      const make = async () =>
        (await t.request<TokenizeReply>('POST', tokens(), { body: card(testCards.discover) })).json.token.id;
      const reveal = (id: string) => t.platform.services.vault!.tokens.reveal(t.access, id, 'test');
      const refused = { code: 'token_integrity_failed' };

      const a = await make();
      await t.adminSql`update vault.tokens set ciphertext = set_byte(ciphertext, 20, (get_byte(ciphertext, 20) + 1) % 256) where id = ${a}`;
      await assert.rejects(reveal(a), refused);
      // The access was recorded before the card was opened, and the failure to open it after.
      const recorded = await t.adminSql<{ outcome: string; reason: string | null }[]>`
        select outcome, reason from audit.records where action = 'token.reveal' and resource_id = ${a} order by seq`;
      assert.deepEqual(
        recorded.map((r) => [r.outcome, r.reason]),
        [
          ['success', null],
          ['failure', 'token_integrity_failed'],
        ],
      );

      const b = await make();
      await t.adminSql`update vault.tokens set wrapped_dek = set_byte(wrapped_dek, 30, (get_byte(wrapped_dek, 30) + 1) % 256) where id = ${b}`;
      await assert.rejects(reveal(b), refused);

      const c = await make();
      await t.adminSql`update vault.tokens set kek_version = 2 where id = ${c}`;
      await assert.rejects(reveal(c), refused);

      // AAD: another record's ciphertext and wrapped key moved onto this token id no longer open.
      const d = await make();
      const e = await make();
      await t.adminSql`update vault.tokens set ciphertext = src.ciphertext, wrapped_dek = src.wrapped_dek
        from (select ciphertext, wrapped_dek from vault.tokens where id = ${d}) src where vault.tokens.id = ${e}`;
      await assert.rejects(reveal(e), refused);
      await reveal(d); // the source record itself is untouched

      const http = await t.request<Problem>('GET', `${tokens()}/${a}`);
      assert.equal(http.status, 200, 'masked metadata does not need decryption and stays readable');
    });

    test('CVV lives only in the volatile store and is gone after TTL, last use and a definitive outcome', async () => {
      const vault = t.platform.services.vault!;
      const store = vault.volatile;
      const slotKey = (id: string) => `${CvvSlots.keyPrefix(t.merchantId)}${id}`;
      const present = async (id: string) =>
        t.redis
          ? (await t.redis.exists(slotKey(id))) === 1
          : (store as MemoryVolatileStore).holds(slotKey(id));

      // TTL: a three-second slot disappears from the store itself (Redis expiry or the memory sweeper).
      // Three, not one: a loaded machine may take a second to answer and check it.
      const short = await t.request<TokenizeReply>('POST', tokens(), {
        body: card(testCards.amex, { cvv: testCvvs.four, cvv_options: { ttl_seconds: 3 } }),
      });
      assert.equal(short.status, 201);
      const shortSlot = short.json.cvv_slot!.id;
      assert.equal(await present(shortSlot), true);
      await new Promise((r) => setTimeout(r, 4300));
      assert.equal(await present(shortSlot), false, 'expired slot is deleted, not hidden');
      assert.equal((await t.request<Problem>('GET', `${t.vaultUrl}/v1/cvv-slots/${shortSlot}`)).status, 404);

      // Last use: a retriable outcome keeps the slot until its use budget is spent.
      const two = await t.request<TokenizeReply>('POST', tokens(), {
        body: card(testCards.visa, { cvv: testCvvs.three, cvv_options: { max_uses: 2 } }),
      });
      const { id: twoSlot } = two.json.cvv_slot!;
      const seen: string[] = [];
      const retriable = async (cvv: { expose(): Buffer }) => {
        seen.push(cvv.expose().toString());
        return { outcome: 'retriable' as const, result: 'timeout' };
      };
      await vault.cvvSlots.consume(t.access, twoSlot, two.json.token.id, retriable);
      assert.equal(await present(twoSlot), true, 'kept after a retriable failure');
      await vault.cvvSlots.consume(t.access, twoSlot, two.json.token.id, retriable);
      assert.equal(await present(twoSlot), false, 'gone after its last use');
      assert.ok(
        seen.every((v) => v === testCvvs.three),
        'consume hands over the CVV that was stored',
      );
      await assert.rejects(vault.cvvSlots.consume(t.access, twoSlot, two.json.token.id, retriable), {
        code: 'cvv_slot_not_found',
      });

      // Definitive outcomes destroy at once, and the buffer handed out is zeroed afterwards.
      for (const outcome of ['approved', 'declined'] as const) {
        const r = await t.request<TokenizeReply>('POST', tokens(), {
          body: card(testCards.visa, { cvv: testCvvs.three }),
        });
        let held: Buffer | undefined;
        await vault.cvvSlots.consume(t.access, r.json.cvv_slot!.id, r.json.token.id, async (cvv) => {
          held = cvv.expose();
          return { outcome, result: outcome };
        });
        assert.equal(await present(r.json.cvv_slot!.id), false, `gone after ${outcome}`);
        assert.ok(
          held?.every((b) => b === 0),
          'the CVV buffer was zeroed',
        );
      }

      // A slot is bound to its token: presenting another token's id does not use it.
      const bound = await t.request<TokenizeReply>('POST', tokens(), {
        body: card(testCards.visa, { cvv: testCvvs.three }),
      });
      await assert.rejects(
        vault.cvvSlots.consume(t.access, bound.json.cvv_slot!.id, short.json.token.id, retriable),
        { code: 'cvv_slot_not_found' },
      );

      const dump = await dumpDatabase(t);
      assert.ok(
        !dump.includes(`"${testCvvs.four}"`) && !dump.includes(hex(testCvvs.four)),
        'no CVV in PostgreSQL',
      );
      // The api's payments name a CVV slot by its id (payments.payment_intents.cvv_slot, checked to be
      // `cvv_…` by the schema); no column holds a CVV.
      const columns = await t.adminSql`
        select table_schema, table_name, column_name from information_schema.columns
        where (column_name ilike '%cvv%' or column_name ilike '%cvc%')
          and not (table_schema = 'payments' and table_name = 'payment_intents' and column_name = 'cvv_slot')`;
      assert.equal(columns.length, 0, 'no table has a CVV column');
      const slotIds = await t.adminSql`
        select count(*)::int as bad from payments.payment_intents where cvv_slot !~ '^cvv_[0-9A-Za-z]{22}$'`;
      assert.equal(slotIds[0]?.['bad'], 0, 'the payments column holds slot ids only');
    });

    test('CVV slots can be added to a token, inspected without the CVV, and destroyed', async () => {
      const created = await t.request<TokenizeReply>('POST', tokens(), { body: card(testCards.amex) });
      const bad = await t.request<Problem>('POST', `${tokens()}/${created.json.token.id}/cvv-slots`, {
        body: { cvv: testCvvs.three },
      });
      assert.equal(bad.status, 422, 'Amex needs four digits');
      assert.equal(bad.json.field, 'cvv');
      const tooLong = await t.request<Problem>('POST', `${tokens()}/${created.json.token.id}/cvv-slots`, {
        body: { cvv: testCvvs.four, ttl_seconds: 3601 },
      });
      assert.equal(tooLong.status, 422);
      assert.equal(tooLong.json.field, 'ttl_seconds');
      const slot = await t.request<{ id: string; uses_remaining: number }>(
        'POST',
        `${tokens()}/${created.json.token.id}/cvv-slots`,
        {
          body: { cvv: testCvvs.four, max_uses: 1 },
        },
      );
      assert.equal(slot.status, 201);
      const info = await t.request<Record<string, unknown>>(
        'GET',
        `${t.vaultUrl}/v1/cvv-slots/${slot.json.id}`,
      );
      assert.equal(info.status, 200);
      assert.equal(info.json['uses_remaining'], 1);
      assert.ok(!info.text.includes(testCvvs.four), 'slot metadata never carries the CVV');
      assert.equal((await t.request('DELETE', `${t.vaultUrl}/v1/cvv-slots/${slot.json.id}`)).status, 204);
      assert.equal((await t.request('GET', `${t.vaultUrl}/v1/cvv-slots/${slot.json.id}`)).status, 404);
    });

    test('bad input gets a problem+json naming the field, never echoing the PAN, writing nothing', async () => {
      const count = async () =>
        Number((await t.adminSql`select count(*)::int as n from vault.tokens`)[0]?.['n']);
      const before = await count();
      const visa15 = '424242424242424'; // Luhn-valid, but Visa has no 15-digit numbers
      assert.ok(luhnValid(visa15));
      const cases: Array<{
        name: string;
        body?: unknown;
        raw?: string;
        status: number;
        code: string;
        field: string;
        secret?: string;
      }> = [
        {
          name: 'Luhn failure',
          body: card('4242424242424241'),
          status: 422,
          code: 'card_number_luhn_failed',
          field: 'pan',
          secret: '4242424242424241',
        },
        {
          name: 'wrong length for brand',
          body: card(visa15),
          status: 422,
          code: 'card_number_length_invalid',
          field: 'pan',
          secret: visa15,
        },
        {
          name: 'past expiry',
          body: { ...card(testCards.visa), exp_year: 2020 },
          status: 422,
          code: 'card_expired',
          field: 'exp_year',
          secret: testCards.visa,
        },
        {
          name: 'month out of range',
          body: { ...card(testCards.visa), exp_month: 13 },
          status: 422,
          code: 'card_expiry_invalid',
          field: 'exp_month',
          secret: testCards.visa,
        },
        {
          name: 'non-digits',
          body: card('4242-4242-4242-4242'),
          status: 422,
          code: 'card_number_invalid',
          field: 'pan',
          secret: '4242-4242-4242-4242',
        },
        {
          name: 'PAN as a number',
          raw: `{"pan":${testCards.visa},"exp_month":12,"exp_year":${futureYear}}`,
          status: 400,
          code: 'request_invalid',
          field: 'pan',
          secret: testCards.visa,
        },
        {
          name: 'month as a string',
          body: { ...card(testCards.visa), exp_month: '12' },
          status: 400,
          code: 'request_invalid',
          field: 'exp_month',
          secret: testCards.visa,
        },
        {
          name: 'unknown field',
          body: card(testCards.visa, { card_number: testCards.visa }),
          status: 400,
          code: 'request_invalid',
          field: 'card_number',
          secret: testCards.visa,
        },
        {
          name: 'missing field',
          body: { pan: testCards.visa, exp_month: 12 },
          status: 400,
          code: 'request_invalid',
          field: 'exp_year',
          secret: testCards.visa,
        },
        {
          name: 'broken JSON',
          raw: `{"pan":"${testCards.visa}",`,
          status: 400,
          code: 'body_not_json',
          field: 'body',
          secret: testCards.visa,
        },
        {
          name: 'bad CVV',
          body: card(testCards.visa, { cvv: '12a' }),
          status: 422,
          code: 'cvv_invalid',
          field: 'cvv',
          secret: testCards.visa,
        },
        {
          name: 'holder name with a PAN',
          body: card(testCards.visa, { holder_name: `Ada ${testCards.mastercard}` }),
          status: 422,
          code: 'holder_name_invalid',
          field: 'holder_name',
          secret: testCards.mastercard,
        },
        {
          name: 'token expiry in the past',
          body: card(testCards.visa, { expires_at: '2001-01-01T00:00:00Z' }),
          status: 422,
          code: 'token_expiry_invalid',
          field: 'expires_at',
          secret: testCards.visa,
        },
        {
          name: 'CVV TTL over the cap',
          body: card(testCards.visa, { cvv: testCvvs.three, cvv_options: { ttl_seconds: 7200 } }),
          status: 422,
          code: 'cvv_slot_options_invalid',
          field: 'cvv_options.ttl_seconds',
          secret: testCards.visa,
        },
        {
          name: 'oversized body',
          raw: JSON.stringify(card(testCards.visa, { holder_name: 'x'.repeat(300_000) })),
          status: 413,
          code: 'body_too_large',
          field: 'body',
          secret: testCards.visa,
        },
      ];
      for (const c of cases) {
        const reply = await t.request<Problem>(
          'POST',
          tokens(),
          c.raw !== undefined ? { rawBody: c.raw } : { body: c.body },
        );
        assert.equal(reply.status, c.status, `${c.name}: status`);
        assert.match(
          reply.headers.get('content-type') ?? '',
          /^application\/problem\+json/,
          `${c.name}: content type`,
        );
        assert.equal(reply.json.code, c.code, `${c.name}: code`);
        assert.equal(reply.json.type, `urn:cardhold:error:${c.code}`);
        const fields = [reply.json.field, ...(reply.json.errors ?? []).map((e) => e.field)];
        assert.ok(fields.includes(c.field), `${c.name}: names ${c.field}, got ${fields.join(', ')}`);
        if (c.secret)
          assert.ok(!reply.text.includes(c.secret), `${c.name}: the answer must not echo the card number`);
      }

      const overBatch = await t.request<Problem>('POST', `${tokens()}/batch`, {
        body: { cards: Array.from({ length: 101 }, () => card(testCards.visa)) },
      });
      assert.equal(overBatch.status, 400);
      assert.equal(overBatch.json.field, 'cards');
      assert.equal(await count(), before, 'nothing was written by any rejected request');
    });

    test('batch tokenize gives a result per item and writes only the valid ones', async () => {
      const reply = await t.request<{
        results: Array<{ index: number; status: string; result?: TokenizeReply; error?: Problem }>;
      }>('POST', `${tokens()}/batch`, {
        body: { cards: [card(testCards.unionpay), card('4242424242424241'), card(testCards.diners14)] },
      });
      assert.equal(reply.status, 200);
      assert.deepEqual(
        reply.json.results.map((r) => r.status),
        ['created', 'failed', 'created'],
      );
      assert.equal(reply.json.results[1]?.error?.code, 'card_number_luhn_failed');
      assert.equal(reply.json.results[1]?.error?.field, 'cards[1].pan');
      assert.equal(reply.json.results[2]?.result?.token.brand, 'diners');
      assert.equal(
        reply.json.results[2]?.result?.token.bin,
        '362272',
        '14-digit cards show the first 6 only',
      );
      assert.ok(!reply.text.includes('4242424242424241'));
    });

    test('list and search by fingerprint or last four, paginated, newest first', async () => {
      const key = (
        await t.request<{ api_key: { secret: string } }>('POST', `${t.apiUrl}/v1/merchants`, {
          key: t.adminToken,
          body: { name: 'Lister' },
        })
      ).json.api_key.secret;
      const ids: string[] = [];
      for (const pan of [
        testCards.visa,
        testCards.mastercard,
        testCards.visa,
        testCards.discover,
        testCards.visaDebit,
      ]) {
        ids.push((await t.request<TokenizeReply>('POST', tokens(), { key, body: card(pan) })).json.token.id);
      }
      const page1 = await t.request<{ data: Array<{ id: string; fingerprint: string }>; has_more: boolean }>(
        'GET',
        `${tokens()}?limit=2`,
        { key },
      );
      assert.equal(page1.status, 200);
      assert.deepEqual(
        page1.json.data.map((d) => d.id),
        [ids[4], ids[3]],
      );
      assert.equal(page1.json.has_more, true);
      const page2 = await t.request<{ data: Array<{ id: string }>; has_more: boolean }>(
        'GET',
        `${tokens()}?limit=2&starting_after=${page1.json.data[1]?.id}`,
        { key },
      );
      assert.deepEqual(
        page2.json.data.map((d) => d.id),
        [ids[2], ids[1]],
      );
      const page3 = await t.request<{ data: Array<{ id: string }>; has_more: boolean }>(
        'GET',
        `${tokens()}?limit=2&starting_after=${ids[1]}`,
        { key },
      );
      assert.deepEqual(
        page3.json.data.map((d) => d.id),
        [ids[0]],
      );
      assert.equal(page3.json.has_more, false);

      const visaFp = (await t.request<{ fingerprint: string }>('GET', `${tokens()}/${ids[0]}`, { key })).json
        .fingerprint;
      const byFp = await t.request<{ data: Array<{ id: string }> }>(
        'GET',
        `${tokens()}?fingerprint=${visaFp}`,
        { key },
      );
      assert.deepEqual(byFp.json.data.map((d) => d.id).sort(), [ids[0], ids[2]].sort());
      const byLast4 = await t.request<{ data: Array<{ id: string }> }>('GET', `${tokens()}?last4=4444`, {
        key,
      });
      assert.deepEqual(
        byLast4.json.data.map((d) => d.id),
        [ids[1]],
      );
      const badLimit = await t.request<Problem>('GET', `${tokens()}?limit=1000`, { key });
      assert.equal(badLimit.status, 400);
      assert.equal(badLimit.json.field, 'limit');
    });

    test('format-preserving alias keeps BIN, last four and length, fails Luhn, and reads the token', async () => {
      const created = await t.request<TokenizeReply>('POST', tokens(), {
        body: card(testCards.visa19, { format_preserving_alias: true }),
      });
      const alias = created.json.token.alias!;
      assert.equal(alias.length, testCards.visa19.length);
      assert.equal(alias.slice(0, 6), testCards.visa19.slice(0, 6));
      assert.equal(alias.slice(-4), testCards.visa19.slice(-4));
      assert.equal(luhnValid(alias), false);
      assert.ok(!allTestPans.includes(alias));
      const read = await t.request<{ id: string }>('GET', `${tokens()}/${alias}`);
      assert.equal(read.json.id, created.json.token.id);
    });

    test('alias collisions are retried, never surfaced: 20 aliases from a 90-value space all succeed', async () => {
      // A 12-digit card leaves 2 random digits between BIN and last four, so collisions are near certain.
      const replies = [];
      for (let i = 0; i < 20; i++) {
        replies.push(
          await t.request<TokenizeReply>('POST', tokens(), {
            body: card(testCards.maestro12, { format_preserving_alias: true }),
          }),
        );
      }
      assert.deepEqual(new Set(replies.map((r) => r.status)), new Set([201]));
      assert.equal(new Set(replies.map((r) => r.json.token.alias)).size, 20);
    });

    test('tokens with an expiry vanish once past it and the purge job deletes them', async () => {
      const created = await t.request<TokenizeReply>('POST', tokens(), {
        body: card(testCards.mastercard2series, {
          expires_at: new Date(Date.now() + 3600_000).toISOString(),
        }),
      });
      assert.equal(created.status, 201);
      await t.adminSql`update vault.tokens set expires_at = now() - interval '1 second' where id = ${created.json.token.id}`;
      assert.equal((await t.request('GET', `${tokens()}/${created.json.token.id}`)).status, 404);
      const purged = await t.platform.services.vault!.tokens.purgeExpired();
      assert.ok(purged >= 1);
      assert.equal(
        (await t.adminSql`select 1 from vault.tokens where id = ${created.json.token.id}`).length,
        0,
      );
    });

    test('credentials: none, unknown, revoked and under-scoped keys are refused', async () => {
      const body = card(testCards.visa);
      const none = await t.request<Problem>('POST', tokens(), { key: null, body });
      assert.equal(none.status, 401);
      assert.equal(none.json.code, 'unauthenticated');
      const unknown = await t.request<Problem>('POST', tokens(), { key: `sk_test_${'A'.repeat(43)}`, body });
      assert.equal(unknown.status, 401);
      const readOnly = await t.request<{ secret: string; id: string }>(
        'POST',
        `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`,
        {
          key: t.adminToken,
          body: { scopes: ['tokens:read'], label: 'read only' },
        },
      );
      assert.equal(readOnly.status, 201);
      const denied = await t.request<Problem>('POST', tokens(), { key: readOnly.json.secret, body });
      assert.equal(denied.status, 403);
      assert.equal(denied.json.code, 'forbidden');
      const revoked = await t.request(
        'DELETE',
        `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys/${readOnly.json.id}`,
        { key: t.adminToken },
      );
      assert.equal(revoked.status, 200);
      const list = await t.request<{ data: Array<{ id: string; revoked_at: string | null }> }>(
        'GET',
        `${t.apiUrl}/v1/merchants/${t.merchantId}/api-keys`,
        { key: t.adminToken },
      );
      assert.ok(list.json.data.find((k) => k.id === readOnly.json.id)?.revoked_at);
      assert.ok(!list.text.includes(readOnly.json.secret), 'key listings never include secrets');
      const adminDenied = await t.request<Problem>('POST', `${t.apiUrl}/v1/merchants`, {
        key: t.secretKey,
        body: { name: 'x' },
      });
      // The api knows merchant keys (they manage webhooks there), and refuses them administration.
      assert.equal(adminDenied.status, 403, 'a merchant key is not an admin credential');
      assert.equal(adminDenied.json.code, 'forbidden');
    });

    test('health, readiness, OpenAPI and response headers', async () => {
      for (const url of [t.vaultUrl, t.apiUrl]) {
        assert.equal((await t.request('GET', `${url}/healthz`, { key: null })).status, 200);
        const ready = await t.request<{ status: string }>('GET', `${url}/readyz`, { key: null });
        assert.equal(ready.status, 200);
        assert.equal(ready.json.status, 'ready');
      }
      const doc = await t.request<{ openapi: string; paths: Record<string, unknown> }>(
        'GET',
        `${t.vaultUrl}/docs/json`,
        { key: null },
      );
      assert.equal(doc.json.openapi, '3.1.0');
      for (const p of [
        '/v1/tokens',
        '/v1/tokens/{id}',
        '/v1/tokens/batch',
        '/v1/tokens/{id}/cvv-slots',
        '/v1/cvv-slots/{id}',
      ]) {
        assert.ok(doc.json.paths[p], `OpenAPI documents ${p}`);
      }
      const reply = await t.request('GET', `${tokens()}?limit=1`, {
        headers: { 'x-request-id': 'test-request-0001' },
      });
      assert.equal(reply.headers.get('x-request-id'), 'test-request-0001');
      assert.equal(reply.headers.get('cache-control'), 'no-store');
      const smuggled = await t.request('GET', `${tokens()}?limit=1`, {
        headers: { 'x-request-id': testCards.visa },
      });
      assert.notEqual(
        smuggled.headers.get('x-request-id'),
        testCards.visa,
        'a PAN-shaped request id is replaced',
      );
      const missing = await t.request<Problem>('GET', `${t.vaultUrl}/v1/nothing-here`);
      assert.equal(missing.status, 404);
      assert.equal(missing.json.code, 'route_not_found');
    });

    test('a PAN in the URL is rejected and never logged', async () => {
      const reply = await t.request<Problem>('GET', `${tokens()}/${testCards.mastercard}`);
      assert.ok(reply.status === 404 || reply.status === 400);
      assert.ok(!reply.text.includes(testCards.mastercard));
    });
  });
}

test('Secret-wrapped PANs stay redacted when logged by mistake', () => {
  const s = new Secret(testCards.visa);
  assert.ok(!JSON.stringify({ s }).includes(testCards.visa));
});

// The memory store's sweeper must not keep the test process alive.
test('memory volatile store closes cleanly', async () => {
  const store = new MemoryVolatileStore();
  await store.close();
  assert.equal(await store.count(''), 0);
});
