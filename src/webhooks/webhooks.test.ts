import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { testCards } from '../../test/fixtures/cards.ts';
import { backends, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { findPans } from '../shared/pan-detect.ts';
import type { Sql } from '../storage/database.ts';
import { enqueueEvent } from './outbox.ts';
import { verifyWebhookSignature } from './signature.ts';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}

/**
 * A merchant's webhook receiver on loopback. Each path answers what `answers` says (200 by default);
 * `down()` closes the listener, so connections are refused, and `up()` listens again on the same port.
 */
class Receiver {
  readonly received: Received[] = [];
  readonly answers = new Map<string, number>();
  #server: Server | undefined;
  port = 0;

  async up(): Promise<void> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const url = request.url ?? '/';
        const answered = this.answers.get(url) ?? 200;
        this.received.push({
          path: url,
          headers: request.headers,
          body: Buffer.concat(chunks).toString(),
          answered,
        });
        response.writeHead(answered, { 'content-type': 'text/plain' }).end('a body cardhold must not store');
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async down(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  url(pathname: string): string {
    return `http://127.0.0.1:${this.port}${pathname}`;
  }

  succeeded(pathname: string): Received[] {
    return this.received.filter((r) => r.path === pathname && r.answered === 200);
  }
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface EndpointReply {
  id: string;
  url: string;
  enabled_events: string[];
  secret: string;
  previous_secret_expires_at: string | null;
}

interface DeliveryReply {
  id: string;
  event_id: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  last_status_code: number | null;
  attempt_log: Array<{ attempt: number; outcome: string; error: string | null; status_code: number | null }>;
}

type Problem = { code: string; title: string; detail: string; field?: string; status: number };

/** A payment-like object: ids, amounts, last four; what the payments code will send. */
const paymentLike = (n: number) => ({
  id: `pi_test_${n}`,
  object: 'payment_intent',
  amount: 1000 + n,
  currency: 'eur',
  status: 'succeeded',
  payment_method: { type: 'card', card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2030 } },
});

const HORIZON_MS = 60_000;

for (const backend of backends()) {
  describe(`webhooks (${backend})`, () => {
    let t: TestPlatform;
    const receiver = new Receiver();
    const payloads: string[] = [];

    before(async () => {
      await receiver.up();
      t = await startTestPlatform(backend, 'webhooks', {
        env: {
          CARDHOLD_WEBHOOK_RETRY_BASE_MS: '40',
          CARDHOLD_WEBHOOK_RETRY_CAP_MS: '200',
          CARDHOLD_WEBHOOK_RETRY_HORIZON_MS: String(HORIZON_MS),
          CARDHOLD_WEBHOOK_POLL_INTERVAL_MS: '20',
          CARDHOLD_WEBHOOK_TIMEOUT_MS: '3000',
        },
      });
    });
    after(async () => {
      await t?.close();
      await receiver.down();
      payloads.push(...receiver.received.map((r) => r.body));
      const dir = path.resolve('test-output', 'webhooks');
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, `payloads-${backend}-${process.pid}.jsonl`), `${payloads.join('\n')}\n`);
    });

    const apiSql = () => t.platform.services.apiSql as Sql;
    /** A fresh merchant and its secret key, so tests do not see each other's endpoints. */
    const newMerchant = async (name: string) => {
      const made = await t.request<{ merchant: { id: string }; api_key: { secret: string } }>(
        'POST',
        `${t.apiUrl}/v1/merchants`,
        { key: t.adminToken, body: { name } },
      );
      assert.equal(made.status, 201, made.text);
      // A key for webhooks alone, and one without webhooks:manage, which must be refused.
      const id = made.json.merchant.id;
      const issued = await t.request<{ secret: string }>('POST', `${t.apiUrl}/v1/merchants/${id}/api-keys`, {
        key: t.adminToken,
        body: { scopes: ['webhooks:manage'], label: 'webhooks' },
      });
      assert.equal(issued.status, 201, issued.text);
      const tokensOnly = await t.request<{ secret: string }>(
        'POST',
        `${t.apiUrl}/v1/merchants/${id}/api-keys`,
        {
          key: t.adminToken,
          body: { scopes: ['tokens:create', 'tokens:read'], label: 'tokens only' },
        },
      );
      assert.equal(tokensOnly.status, 201, tokensOnly.text);
      return { id, key: issued.json.secret, tokenKey: tokensOnly.json.secret };
    };
    const createEndpoint = async (key: string, body: Record<string, unknown>) => {
      const reply = await t.request<EndpointReply>('POST', `${t.apiUrl}/v1/webhook_endpoints`, { key, body });
      assert.equal(reply.status, 201, reply.text);
      return reply.json;
    };
    const enqueue = (merchantId: string, type: string, data: Record<string, unknown>, now?: Date) =>
      apiSql().begin((tx) =>
        enqueueEvent(tx as unknown as Sql, { merchantId, type, data }, now ? { now } : {}),
      );
    const deliveries = async (key: string, endpointId: string) => {
      const reply = await t.request<{ data: DeliveryReply[] }>(
        'GET',
        `${t.apiUrl}/v1/webhook_endpoints/${endpointId}/deliveries?limit=100`,
        { key },
      );
      assert.equal(reply.status, 200, reply.text);
      return reply.json.data;
    };

    test('an event enqueued in a transaction that rolls back leaves no event and no delivery', async () => {
      const m = await newMerchant('Rollback Ltd');
      await createEndpoint(m.key, { url: receiver.url('/rollback'), enabled_events: ['*'] });
      await assert.rejects(
        apiSql().begin(async (tx) => {
          await enqueueEvent(tx as unknown as Sql, {
            merchantId: m.id,
            type: 'payment_intent.succeeded',
            data: paymentLike(1),
          });
          throw new Error('the business change failed');
        }),
        /the business change failed/,
      );
      const counts = async () => {
        const [row] = await t.adminSql<{ events: number; deliveries: number }[]>`
          select (select count(*)::int from webhooks.events where merchant_id = ${m.id}) as events,
            (select count(*)::int from webhooks.deliveries where merchant_id = ${m.id}) as deliveries`;
        return row;
      };
      assert.deepEqual(await counts(), { events: 0, deliveries: 0 });
      // The same call in a transaction that commits writes the event and its delivery.
      const { id } = await enqueue(m.id, 'payment_intent.succeeded', paymentLike(2));
      assert.match(id, /^evt_[0-9A-Za-z]{22}$/);
      assert.deepEqual(await counts(), { events: 1, deliveries: 1 });
      await eventually('the committed event to arrive', async () =>
        receiver.succeeded('/rollback').length === 1 ? true : undefined,
      );
    });

    test('a payload holding anything like a card number is refused, and the transaction rolls back', async () => {
      const m = await newMerchant('Guarded Ltd');
      for (const data of [
        { note: testCards.visa },
        { nested: { deep: [`card ${testCards.mastercard.replace(/(\d{4})(?=\d)/g, '$1 ')}`] } },
      ]) {
        await assert.rejects(enqueue(m.id, 'payment_intent.succeeded', data), (error: unknown) => {
          assert.equal((error as { code: string }).code, 'webhook_payload_rejected');
          assert.ok(!String((error as Error).message).includes(testCards.visa));
          return true;
        });
      }
      const rows = await t.adminSql`select 1 from webhooks.events where merchant_id = ${m.id}`;
      assert.equal(rows.length, 0);
      await assert.rejects(enqueue(m.id, 'Not A Type', {}), TypeError);
    });

    test('a receiver that is down for a while receives every event later, once, with signatures that verify', async () => {
      const m = await newMerchant('Patient Ltd');
      const flaky = new Receiver();
      await flaky.up();
      await flaky.down(); // the port is known, nothing listens: connections are refused
      const endpoint = await createEndpoint(m.key, {
        url: flaky.url('/hooks'),
        enabled_events: ['payment_intent.succeeded', 'charge.refunded'],
        description: 'orders service',
      });
      assert.match(endpoint.secret, /^whsec_[0-9A-Za-z]{43}$/);
      const sent: string[] = [];
      for (let n = 0; n < 5; n++) {
        sent.push(
          (await enqueue(m.id, n % 2 ? 'charge.refunded' : 'payment_intent.succeeded', paymentLike(n))).id,
        );
      }
      // An event type the endpoint did not ask for gets no delivery.
      await enqueue(m.id, 'payment_intent.created', paymentLike(9));

      await eventually('refused attempts', async () => {
        const log = await deliveries(m.key, endpoint.id);
        return log.length === 5 &&
          log.every((d) => d.status === 'failed' && d.last_error === 'connection_refused')
          ? true
          : undefined;
      });
      // Up, but answering 500 for a while.
      flaky.answers.set('/hooks', 500);
      await flaky.up();
      await eventually('500 answers', async () =>
        (await deliveries(m.key, endpoint.id)).every((d) => d.last_error === 'http_500') ? true : undefined,
      );
      flaky.answers.set('/hooks', 200);
      const done = await eventually('every delivery to succeed', async () => {
        const log = await deliveries(m.key, endpoint.id);
        return log.every((d) => d.status === 'succeeded') ? log : undefined;
      });
      await flaky.down();

      assert.deepEqual(done.map((d) => d.event_id).sort(), [...sent].sort());
      for (const delivery of done) {
        const outcomes = delivery.attempt_log.map((a) => a.outcome);
        assert.equal(outcomes.filter((o) => o === 'succeeded').length, 1, 'exactly one success per delivery');
        assert.equal(outcomes.at(-1), 'succeeded');
        const errors = new Set(delivery.attempt_log.map((a) => a.error));
        assert.ok(errors.has('connection_refused') && errors.has('http_500'), [...errors].join(','));
        assert.equal(delivery.attempts, delivery.attempt_log.length);
        assert.equal(delivery.next_attempt_at, null);
        assert.equal(delivery.last_status_code, 200);
      }
      const good = flaky.succeeded('/hooks');
      assert.deepEqual(good.map((r) => JSON.parse(r.body).id).sort(), [...sent].sort(), 'each event once');
      for (const request of good) {
        verifyWebhookSignature(request.body, String(request.headers['cardhold-signature']), endpoint.secret);
        const event = JSON.parse(request.body);
        assert.equal(request.headers['cardhold-event-id'], event.id);
        assert.equal(request.headers['content-type'], 'application/json; charset=utf-8');
        assert.equal(event.object, 'event');
        assert.equal(event.livemode, false);
        assert.equal(typeof event.created, 'number');
        assert.equal(event.data.object.object, 'payment_intent');
        assert.throws(() =>
          verifyWebhookSignature(
            request.body.replace('"amount"', '"amount" '),
            String(request.headers['cardhold-signature']),
            endpoint.secret,
          ),
        );
        // The API serves the same event.
        const read = await t.request<Record<string, unknown>>('GET', `${t.apiUrl}/v1/events/${event.id}`, {
          key: m.key,
        });
        assert.deepEqual(read.json, event);
      }
      const listed = await t.request<{ data: Array<{ id: string }> }>(
        'GET',
        `${t.apiUrl}/v1/events?limit=100`,
        {
          key: m.key,
        },
      );
      assert.equal(listed.json.data.length, 6, 'every event, delivered or not');
      const refunds = await t.request<{ data: Array<{ type: string }> }>(
        'GET',
        `${t.apiUrl}/v1/events?type=charge.refunded`,
        { key: m.key },
      );
      assert.deepEqual(
        refunds.json.data.map((e) => e.type),
        ['charge.refunded', 'charge.refunded'],
      );
      payloads.push(...flaky.received.map((r) => r.body));
      const stored = await t.adminSql<{ n: number }[]>`
        select count(*)::int as n from webhooks.delivery_attempts a
        join webhooks.deliveries d on d.id = a.delivery_id where d.endpoint_id = ${endpoint.id}`;
      assert.ok((stored[0]?.n ?? 0) >= 15);
    });

    test('a secret rotation signs with both secrets during the overlap, then with the new one', async () => {
      const m = await newMerchant('Rotating Ltd');
      const endpoint = await createEndpoint(m.key, { url: receiver.url('/rotate'), enabled_events: ['*'] });
      const rotated = await t.request<EndpointReply>(
        'POST',
        `${t.apiUrl}/v1/webhook_endpoints/${endpoint.id}/rotate_secret`,
        { key: m.key, body: { expires_in_seconds: 3600 } },
      );
      assert.equal(rotated.status, 201, rotated.text);
      assert.notEqual(rotated.json.secret, endpoint.secret);
      assert.ok(rotated.json.previous_secret_expires_at);
      const arrival = async (n: number) => {
        const { id } = await enqueue(m.id, 'payment_intent.succeeded', paymentLike(n));
        return eventually('the event', async () =>
          receiver.succeeded('/rotate').find((r) => JSON.parse(r.body).id === id),
        );
      };
      const during = await arrival(1);
      const header = String(during.headers['cardhold-signature']);
      assert.equal(header.match(/v1=/g)?.length, 2);
      verifyWebhookSignature(during.body, header, endpoint.secret);
      verifyWebhookSignature(during.body, header, rotated.json.secret);

      // Rotating again with no overlap: only the newest secret signs.
      const again = await t.request<EndpointReply>(
        'POST',
        `${t.apiUrl}/v1/webhook_endpoints/${endpoint.id}/rotate_secret`,
        { key: m.key, body: { expires_in_seconds: 0 } },
      );
      assert.equal(again.status, 201);
      assert.equal(again.json.previous_secret_expires_at, null);
      const afterwards = await arrival(2);
      const single = String(afterwards.headers['cardhold-signature']);
      assert.equal(single.match(/v1=/g)?.length, 1);
      verifyWebhookSignature(afterwards.body, single, again.json.secret);
      for (const old of [endpoint.secret, rotated.json.secret]) {
        assert.throws(() => verifyWebhookSignature(afterwards.body, single, old), /No signature matches/);
      }
      // Secrets are sealed at rest and appear in no audit record.
      const sealed = await t.adminSql<{ sealed_secret: Buffer }[]>`
        select sealed_secret from webhooks.endpoint_secrets where endpoint_id = ${endpoint.id}`;
      assert.equal(sealed.length, 1, 'expired secrets are deleted');
      assert.ok(!sealed[0]?.sealed_secret.includes(again.json.secret));
      const audit = await t.adminSql<{ text: string }[]>`
        select row_to_json(r)::text as text from audit.records r
        where resource_id = ${endpoint.id} order by seq`;
      assert.deepEqual(
        audit.map((r) => JSON.parse(r.text).action),
        ['webhook_endpoint.create', 'webhook_endpoint.rotate_secret', 'webhook_endpoint.rotate_secret'],
      );
      assert.ok(audit.every((r) => !r.text.includes('whsec_')));
    });

    test('a delivery still failing at the horizon is abandoned; a manual retry sends it once more', async () => {
      const m = await newMerchant('Abandoned Ltd');
      receiver.answers.set('/abandon', 503);
      const endpoint = await createEndpoint(m.key, { url: receiver.url('/abandon'), enabled_events: ['*'] });
      // Events dated so that the horizon ends within a few seconds (late: retried every 200 ms or less
      // until then, with room for a slow machine's first attempt) or has already ended (stale).
      const late = await enqueue(
        m.id,
        'payment_intent.succeeded',
        paymentLike(1),
        new Date(Date.now() - HORIZON_MS + 4000),
      );
      const stale = await enqueue(
        m.id,
        'payment_intent.succeeded',
        paymentLike(2),
        new Date(Date.now() - HORIZON_MS - 1),
      );
      const abandoned = await eventually('both to be abandoned', async () => {
        const log = await deliveries(m.key, endpoint.id);
        return log.length === 2 && log.every((d) => d.status === 'abandoned') ? log : undefined;
      });
      const byEvent = new Map(abandoned.map((d) => [d.event_id, d]));
      assert.ok((byEvent.get(late.id)?.attempts ?? 0) >= 2, 'retried until the horizon');
      assert.equal(byEvent.get(stale.id)?.attempts, 1, 'one attempt, already past the horizon');
      for (const d of abandoned) {
        assert.equal(d.next_attempt_at, null);
        assert.equal(d.last_status_code, 503);
        assert.equal(d.last_error, 'http_503');
      }
      const settled = byEvent.get(late.id)?.attempts ?? 0;
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(
        (await deliveries(m.key, endpoint.id)).find((d) => d.event_id === late.id)?.attempts,
        settled,
        'an abandoned delivery is not tried again by itself',
      );

      receiver.answers.set('/abandon', 200);
      const target = byEvent.get(stale.id) as DeliveryReply;
      const retry = await t.request<DeliveryReply>(
        'POST',
        `${t.apiUrl}/v1/webhook_deliveries/${target.id}/retry`,
        {
          key: m.key,
        },
      );
      assert.equal(retry.status, 202, retry.text);
      // The dispatcher polls every few milliseconds here, so it may already have delivered it.
      assert.ok(['pending', 'succeeded'].includes(retry.json.status), retry.json.status);
      const retried = await eventually('the retried delivery to succeed', async () => {
        const d = (await deliveries(m.key, endpoint.id)).find((x) => x.id === target.id);
        return d?.status === 'succeeded' ? d : undefined;
      });
      assert.equal(retried.attempts, 2);
      const recorded = await t.adminSql`
        select 1 from audit.records where action = 'webhook_delivery.retry' and resource_id = ${target.id}`;
      assert.equal(recorded.length, 1);
    });

    test('deleting an endpoint stops its deliveries and hides it; the log stays in the database', async () => {
      const m = await newMerchant('Deleting Ltd');
      receiver.answers.set('/deleted', 500);
      const endpoint = await createEndpoint(m.key, { url: receiver.url('/deleted'), enabled_events: ['*'] });
      await enqueue(m.id, 'payment_intent.succeeded', paymentLike(1));
      await eventually('a failed attempt', async () =>
        (await deliveries(m.key, endpoint.id))[0]?.status === 'failed' ? true : undefined,
      );
      const deleted = await t.request<{ id: string; deleted: boolean }>(
        'DELETE',
        `${t.apiUrl}/v1/webhook_endpoints/${endpoint.id}`,
        { key: m.key },
      );
      assert.deepEqual(deleted.json, { id: endpoint.id, object: 'webhook_endpoint', deleted: true });
      const gone = await t.request<Problem>('GET', `${t.apiUrl}/v1/webhook_endpoints/${endpoint.id}`, {
        key: m.key,
      });
      assert.equal(gone.status, 404);
      assert.equal(gone.json.code, 'webhook_endpoint_not_found');
      const again = await t.request<Problem>('DELETE', `${t.apiUrl}/v1/webhook_endpoints/${endpoint.id}`, {
        key: m.key,
      });
      assert.equal(again.status, 404);
      const rows = await t.adminSql<{ status: string; last_error: string }[]>`
        select status, last_error from webhooks.deliveries where endpoint_id = ${endpoint.id}`;
      assert.deepEqual([...rows], [{ status: 'abandoned', last_error: 'endpoint_deleted' }]);
      const secrets =
        await t.adminSql`select 1 from webhooks.endpoint_secrets where endpoint_id = ${endpoint.id}`;
      assert.equal(secrets.length, 0, 'its secrets are deleted');
      // New events no longer create deliveries for it.
      await enqueue(m.id, 'payment_intent.succeeded', paymentLike(2));
      const after = await t.adminSql`select 1 from webhooks.deliveries where endpoint_id = ${endpoint.id}`;
      assert.equal(after.length, 1);
      const listed = await t.request<{ data: unknown[] }>('GET', `${t.apiUrl}/v1/webhook_endpoints`, {
        key: m.key,
      });
      assert.deepEqual(listed.json.data, []);
    });

    test("another merchant's endpoints, events and deliveries answer exactly like missing ones", async () => {
      const owner = await newMerchant('Owner Ltd');
      const other = await newMerchant('Nosy Ltd');
      const endpoint = await createEndpoint(owner.key, {
        url: receiver.url('/owner'),
        enabled_events: ['*'],
      });
      const event = await enqueue(owner.id, 'payment_intent.succeeded', paymentLike(1));
      const [delivery] = await eventually('the delivery', async () => {
        const log = await deliveries(owner.key, endpoint.id);
        return log[0]?.status === 'succeeded' ? log : undefined;
      });
      const missing = (prefix: string) => `${prefix}_${'Z'.repeat(22)}`;
      const same = async (method: string, foreign: string, absent: string, body?: unknown) => {
        const a = await t.request<Problem>(method, `${t.apiUrl}${foreign}`, { key: other.key, body });
        const b = await t.request<Problem>(method, `${t.apiUrl}${absent}`, { key: other.key, body });
        assert.equal(a.status, 404, `${method} ${foreign}: ${a.text}`);
        const shape = (p: Problem) => ({ code: p.code, title: p.title, detail: p.detail, status: p.status });
        assert.deepEqual(shape(a.json), shape(b.json));
      };
      const ep = `/v1/webhook_endpoints/${endpoint.id}`;
      const noEp = `/v1/webhook_endpoints/${missing('we')}`;
      await same('GET', ep, noEp);
      await same('GET', `${ep}/deliveries`, `${noEp}/deliveries`);
      await same('POST', `${ep}/rotate_secret`, `${noEp}/rotate_secret`, {});
      await same('DELETE', ep, noEp);
      await same('GET', `/v1/events/${event.id}`, `/v1/events/${missing('evt')}`);
      await same(
        'POST',
        `/v1/webhook_deliveries/${delivery?.id}/retry`,
        `/v1/webhook_deliveries/${missing('whd')}/retry`,
      );
      await same(
        'GET',
        `/v1/events?starting_after=${event.id}`,
        `/v1/events?starting_after=${missing('evt')}`,
      );
      for (const list of ['/v1/webhook_endpoints', '/v1/events']) {
        const seen = await t.request<{ data: unknown[] }>('GET', `${t.apiUrl}${list}`, { key: other.key });
        assert.deepEqual(seen.json.data, [], list);
      }
      // Still there for its owner, untouched.
      const own = await t.request('GET', `${t.apiUrl}${ep}`, { key: owner.key });
      assert.equal(own.status, 200);
      const audit = await t.adminSql`select 1 from audit.records where resource_id = ${endpoint.id}`;
      assert.equal(audit.length, 1, 'only the creation: the refused attempts changed nothing');
    });

    test('bad input gets a problem naming the field, and writes nothing', async () => {
      const m = await newMerchant('Careless Ltd');
      const create = (body: unknown) =>
        t.request<Problem>('POST', `${t.apiUrl}/v1/webhook_endpoints`, { key: m.key, body });
      for (const url of [
        'http://shop.example/hooks',
        'ftp://127.0.0.1/hooks',
        'not a url at all',
        'https://user:pass@shop.example/hooks',
      ]) {
        const reply = await create({ url, enabled_events: ['*'] });
        assert.equal(reply.status, 422, url);
        assert.equal(reply.json.code, 'webhook_url_invalid');
        assert.equal(reply.json.field, 'url');
        assert.ok(!reply.text.includes(url), 'the URL is not echoed');
      }
      for (const [body, field] of [
        [{ url: receiver.url('/x'), enabled_events: [] }, 'enabled_events'],
        [{ url: receiver.url('/x'), enabled_events: ['Payment Succeeded'] }, 'enabled_events[0]'],
        [{ url: receiver.url('/x') }, 'enabled_events'],
        [{ url: receiver.url('/x'), enabled_events: ['*'], extra: 1 }, 'extra'],
        // Control characters (NUL, which PostgreSQL refuses) are bad input, never a 500.
        [{ url: receiver.url('/x'), enabled_events: ['*'], description: 'a\u0000b' }, 'description'],
        [{ url: `${receiver.url('/x')}\u0000`, enabled_events: ['*'] }, 'url'],
      ] as const) {
        const reply = await create(body);
        assert.equal(reply.status, 400, JSON.stringify(body));
        assert.equal(reply.json.code, 'request_invalid');
        assert.equal(reply.json.field, field);
      }
      const endpoints = await t.adminSql`select 1 from webhooks.endpoints where merchant_id = ${m.id}`;
      assert.equal(endpoints.length, 0);

      const endpoint = await createEndpoint(m.key, { url: receiver.url('/careless'), enabled_events: ['*'] });
      const tooLong = await t.request<Problem>(
        'POST',
        `${t.apiUrl}/v1/webhook_endpoints/${endpoint.id}/rotate_secret`,
        { key: m.key, body: { expires_in_seconds: 8 * 86_400 } },
      );
      assert.equal(tooLong.status, 400);
      assert.equal(tooLong.json.field, 'expires_in_seconds');
      const malformed = await t.request<Problem>('GET', `${t.apiUrl}/v1/webhook_endpoints/we_nope`, {
        key: m.key,
      });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.json.field, 'id');
      const badLimit = await t.request<Problem>('GET', `${t.apiUrl}/v1/events?limit=1000`, { key: m.key });
      assert.equal(badLimit.status, 400);
      assert.equal(badLimit.json.field, 'limit');
      const publishable = await t.request<{ secret: string }>(
        'POST',
        `${t.apiUrl}/v1/merchants/${m.id}/api-keys`,
        {
          key: t.adminToken,
          body: { kind: 'publishable', allowed_origins: ['https://shop.example'] },
        },
      );
      const refused = await t.request<Problem>('GET', `${t.apiUrl}/v1/webhook_endpoints`, {
        key: publishable.json.secret,
        headers: { origin: 'https://shop.example' },
      });
      assert.equal(refused.status, 403, 'a publishable key cannot manage webhooks');
      const tokensOnly = await t.request<Problem>('GET', `${t.apiUrl}/v1/webhook_endpoints`, {
        key: m.tokenKey,
      });
      assert.equal(tokensOnly.status, 403, 'nor a secret key issued without webhooks:manage');
    });

    test('deliveries are counted in the api metrics', async () => {
      const metrics = t.platform.metricsUrls.api as string;
      const text = (await t.request('GET', metrics, { key: null })).text;
      const succeeded = /cardhold_webhook_deliveries_total\{outcome="succeeded",role="api"\} (\d+)/.exec(
        text,
      );
      assert.ok(succeeded && Number(succeeded[1]) > 0, 'succeeded deliveries are counted');
      assert.match(text, /cardhold_webhook_deliveries_total\{outcome="abandoned",role="api"\} [1-9]/);
      assert.match(text, /cardhold_webhook_deliveries_pending\{role="api"\} \d+/);
    });

    test('no payload the receivers got holds a card number', () => {
      const all = [...payloads, ...receiver.received.map((r) => r.body)];
      assert.ok(all.length > 10, `${all.length} payloads scanned`);
      for (const body of all) {
        assert.deepEqual(findPans(body), []);
        assert.ok(!/"(pan|number|cvv|cvc)"/.test(body));
      }
    });
  });
}
