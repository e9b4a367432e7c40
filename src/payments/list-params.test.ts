import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { after, before, describe, test } from 'node:test';
import Stripe from 'stripe';
import { backends, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { MAX_UNIX_SECONDS } from './schemas.ts';

interface Problem {
  status: number;
  code: string;
  field?: string;
  errors?: { field: string }[];
  error?: { type: string; param?: string };
}

interface List {
  object: 'list';
  data: { id: string; created: number }[];
  has_more: boolean;
}

// Three payments moved to known seconds, 100 s apart, so every bound can be tested exactly.
const T0 = 1_700_000_000;
// The middle one a fraction into its second: shown as `created: T0 + 100`, so `created[lte]=T0 + 100` must
// include it.
const times = [T0, T0 + 100.4, T0 + 200] as const;

for (const backend of backends()) {
  describe(`payment and refund list parameters (${backend})`, () => {
    let t: TestPlatform;
    const ids: string[] = [];

    before(async () => {
      t = await startTestPlatform(backend, 'list-params');
      // One created with a JSON body, two with Stripe's form encoding.
      const json = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/payment_intents`, {
        body: { amount: 1000, currency: 'usd', metadata: { n: '0' } },
      });
      assert.equal(json.status, 200, json.text);
      ids.push(json.json.id);
      for (const n of [1, 2]) {
        const form = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/payment_intents`, {
          rawBody: `amount=${1000 + n}&currency=usd&metadata[n]=${n}`,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
        assert.equal(form.status, 200, form.text);
        ids.push(form.json.id);
      }
      for (const [i, id] of ids.entries()) {
        await t.adminSql`
          update payments.payment_intents set created_at = to_timestamp(${times[i] as number}) where id = ${id}`;
      }
    });
    after(async () => {
      await t?.close();
    });

    const list = (query: string) =>
      t.request<List & Problem>('GET', `${t.apiUrl}/v1/payment_intents?${query}`);
    const listed = async (query: string) => {
      const r = await list(query);
      assert.equal(r.status, 200, `${query}: ${r.text}`);
      return r.json.data.map((p) => p.id);
    };

    test('created[gte] and created[lte] filter inclusively, alone and together', async () => {
      const [a, b, c] = ids;
      assert.deepEqual(await listed(''), [c, b, a], 'newest first, unfiltered');
      assert.deepEqual(await listed(`created[gte]=${T0 + 100}`), [c, b], 'gte includes its own second');
      assert.deepEqual(await listed(`created[gte]=${T0 + 101}`), [c]);
      assert.deepEqual(await listed(`created[lte]=${T0 + 100}`), [b, a], 'lte includes its own second');
      assert.deepEqual(await listed(`created[lte]=${T0 + 99}`), [a]);
      assert.deepEqual(await listed(`created[gte]=${T0 + 50}&created[lte]=${T0 + 150}`), [b]);
      assert.deepEqual(await listed(`created[gte]=${T0 + 201}`), []);
      assert.deepEqual(await listed(`created[lte]=${T0 - 1}`), []);
      // Stripe's SDKs percent-encode the brackets.
      assert.deepEqual(await listed(`created%5Bgte%5D=${T0 + 100}&created%5Blte%5D=${T0 + 100}`), [b]);
      // The bounds themselves are accepted.
      assert.deepEqual(await listed(`created[gte]=0&created[lte]=${MAX_UNIX_SECONDS}`), [c, b, a]);
      // With paging: the filter holds on the second page too.
      const page1 = await list(`limit=1&created[lte]=${T0 + 100}`);
      assert.deepEqual(
        page1.json.data.map((p) => p.id),
        [b],
      );
      assert.equal(page1.json.has_more, true);
      assert.deepEqual(await listed(`limit=1&created[lte]=${T0 + 100}&starting_after=${b}`), [a]);
    });

    test('out-of-range and malformed list parameters are refused as 400 problems naming the field', async () => {
      const cases: Array<[path: string, field: string]> = [
        ['/v1/payment_intents?created[gte]=99999999999999', 'created[gte]'],
        ['/v1/payment_intents?created[lte]=99999999999999', 'created[lte]'],
        [`/v1/payment_intents?created[gte]=${MAX_UNIX_SECONDS + 1}`, 'created[gte]'],
        [`/v1/payment_intents?created[lte]=${MAX_UNIX_SECONDS + 1}`, 'created[lte]'],
        ['/v1/payment_intents?created%5Bgte%5D=99999999999999', 'created[gte]'],
        ['/v1/payment_intents?created[gte]=-1', 'created[gte]'],
        ['/v1/payment_intents?created[lte]=-1', 'created[lte]'],
        ['/v1/payment_intents?created[gte]=1.5', 'created[gte]'],
        ['/v1/payment_intents?created[gte]=1e400', 'created[gte]'],
        ['/v1/payment_intents?created[gte]=99999999999999999999999', 'created[gte]'],
        ['/v1/payment_intents?created[gte]=soon', 'created[gte]'],
        ['/v1/payment_intents?created[gte]=', 'created[gte]'],
        ['/v1/payment_intents?created[gte]=1&created[gte]=2', 'created[gte]'],
        ['/v1/payment_intents?created=1700000000', 'created'],
        ['/v1/payment_intents?limit=0', 'limit'],
        ['/v1/payment_intents?limit=101', 'limit'],
        ['/v1/payment_intents?limit=99999999999999999999', 'limit'],
        ['/v1/payment_intents?limit=-1', 'limit'],
        ['/v1/payment_intents?limit=2.5', 'limit'],
        ['/v1/payment_intents?starting_after=pi_short', 'starting_after'],
        [`/v1/payment_intents?starting_after=re_${'A'.repeat(22)}`, 'starting_after'],
        ['/v1/payment_intents?status=nonsense', 'status'],
        ['/v1/refunds?limit=0', 'limit'],
        ['/v1/refunds?limit=101', 'limit'],
        ['/v1/refunds?limit=99999999999999999999', 'limit'],
        ['/v1/refunds?starting_after=re_short', 'starting_after'],
        ['/v1/refunds?payment_intent=pi_short', 'payment_intent'],
        // Refunds are not filtered by creation time: the filter is an unknown field, not a 500.
        ['/v1/refunds?created[gte]=99999999999999', 'created[gte]'],
      ];
      for (const [path, field] of cases) {
        const r = await t.request<Problem>('GET', `${t.apiUrl}${path}`);
        assert.equal(r.status, 400, `${path}: ${r.text}`);
        assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/, path);
        assert.equal(r.json.code, 'request_invalid', path);
        assert.equal(r.json.field, field, path);
        assert.equal(r.json.error?.type, 'invalid_request_error', path);
        assert.equal(r.json.error?.param, field, path);
        assert.ok(!r.text.includes('99999999999999'), `${path}: the value is not echoed`);
      }
    });

    test('a well-formed starting_after that does not exist is a 404 naming it, not a 500', async () => {
      for (const [path, code] of [
        [`/v1/payment_intents?starting_after=pi_${'Z'.repeat(22)}`, 'payment_not_found'],
        [`/v1/refunds?starting_after=re_${'Z'.repeat(22)}`, 'refund_not_found'],
      ] as const) {
        const r = await t.request<Problem>('GET', `${t.apiUrl}${path}`);
        assert.equal(r.status, 404, `${path}: ${r.text}`);
        assert.equal(r.json.code, code);
        assert.equal(r.json.field, 'starting_after');
      }
    });

    test('the official stripe SDK filters by created and gets a StripeInvalidRequestError out of range', async () => {
      const { hostname, port } = new URL(t.apiUrl);
      const stripe = new Stripe(t.secretKey, {
        host: hostname,
        port: Number(port),
        protocol: 'https',
        httpAgent: new Agent({ ca: await readFile(t.platform.caFile) }),
        maxNetworkRetries: 0,
      });
      const [a, b] = ids;
      const page = await stripe.paymentIntents.list({ created: { gte: T0, lte: T0 + 100 } });
      assert.deepEqual(
        page.data.map((p) => p.id),
        [b, a],
      );
      await assert.rejects(stripe.paymentIntents.list({ created: { gte: 99_999_999_999_999 } }), (error) => {
        assert.ok(error instanceof Stripe.errors.StripeInvalidRequestError, String(error));
        assert.equal(error.statusCode, 400);
        assert.equal(error.param, 'created[gte]');
        return true;
      });
    });
  });
}
