import assert from 'node:assert/strict';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { backends, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { loadConfig } from '../config/config.ts';
import { createLogger } from '../shared/logger.ts';
import type { Sql } from '../storage/database.ts';
import { type DispatcherSettings, WebhookDispatcher } from './dispatcher.ts';
import { enqueueEvent } from './outbox.ts';
import type { WebhookSecretKey } from './secret-key.ts';

const SECOND = 1000;
const HOUR = 3600 * SECOND;

/** The documented defaults (docs/webhooks.md), read from the configuration rather than assumed. */
const defaults = loadConfig({});
const settings: DispatcherSettings = {
  retryBaseMs: defaults.webhookRetryBaseMs,
  retryCapMs: defaults.webhookRetryCapMs,
  retryHorizonMs: defaults.webhookRetryHorizonMs,
  pollIntervalMs: defaults.webhookPollIntervalMs,
  requestTimeoutMs: 2000,
  production: false,
};

/** Signing needs a secret, not the real key: these attempts only ever reach a closed port. */
const stubSecretKey = { open: () => ({ expose: () => 'whsec_backoff_test' }) } as unknown as WebhookSecretKey;

function dispatcher(options: { sql?: Sql; now?: () => number; settings?: Partial<DispatcherSettings> } = {}) {
  return new WebhookDispatcher({
    sql: options.sql ?? ({} as Sql),
    secretKey: stubSecretKey,
    settings: { ...settings, ...options.settings },
    logger: createLogger({ level: 'silent' }),
    ...(options.now ? { now: options.now } : {}),
  });
}

/** The delay before jitter after the n-th failure: base × 2^(n−1), capped. */
const fullDelay = (attempt: number, base = settings.retryBaseMs, cap = settings.retryCapMs) =>
  Math.min(cap, base * 2 ** (attempt - 1));

describe('webhook retry schedule (WebhookDispatcher.backoffMs)', () => {
  test('the defaults are 30 s, 1 h and 24 h, as documented', () => {
    assert.equal(settings.retryBaseMs, 30 * SECOND);
    assert.equal(settings.retryCapMs, HOUR);
    assert.equal(settings.retryHorizonMs, 24 * HOUR);
  });

  test('delays double from the base up to the cap, each with jitter between half and the whole', async () => {
    const d = dispatcher();
    try {
      // 30 s, 1 min, 2 min, 4 min, 8 min, 16 min, 32 min, then the 1 h cap.
      const expected = [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600].map((s) => s * SECOND);
      for (const [i, full] of expected.entries()) {
        const attempt = i + 1;
        assert.equal(fullDelay(attempt), full, `attempt ${attempt}`);
        const samples = Array.from({ length: 3000 }, () => d.backoffMs(attempt));
        const low = Math.min(...samples);
        const high = Math.max(...samples);
        assert.ok(samples.every(Number.isInteger), 'whole milliseconds');
        assert.ok(low >= Math.ceil(full / 2), `attempt ${attempt}: ${low} is at least half of ${full}`);
        assert.ok(high <= full, `attempt ${attempt}: ${high} is at most ${full}`);
        // The jitter really spreads over the range (each bound fails by chance with p < 1e-130).
        assert.ok(low < full * 0.55, `attempt ${attempt}: jitter reaches down near half (${low})`);
        assert.ok(high > full * 0.95, `attempt ${attempt}: jitter reaches up near the whole (${high})`);
      }
      // However many failures, never beyond the cap (and never Infinity or NaN).
      for (const attempt of [50, 1000, Number.MAX_SAFE_INTEGER]) {
        const delay = d.backoffMs(attempt);
        assert.ok(delay >= HOUR / 2 && delay <= HOUR, `attempt ${attempt}: ${delay}`);
      }
      // An attempt count below 1 is treated as the first failure.
      for (const attempt of [0, -3]) {
        const delay = d.backoffMs(attempt);
        assert.ok(delay >= 15 * SECOND && delay <= 30 * SECOND, `attempt ${attempt}: ${delay}`);
      }
    } finally {
      await d.stop();
    }
  });

  test('other settings: the same doubling and cap; a 1 ms base still waits 1 ms', async () => {
    const d = dispatcher({ settings: { retryBaseMs: 40, retryCapMs: 200 } });
    try {
      for (const [attempt, full] of [
        [1, 40],
        [2, 80],
        [3, 160],
        [4, 200],
        [9, 200],
      ] as const) {
        for (let i = 0; i < 500; i++) {
          const delay = d.backoffMs(attempt);
          assert.ok(delay >= full / 2 && delay <= full, `attempt ${attempt}: ${delay}`);
        }
      }
    } finally {
      await d.stop();
    }
    const tiny = dispatcher({ settings: { retryBaseMs: 1, retryCapMs: 1 } });
    try {
      assert.equal(tiny.backoffMs(1), 1);
      assert.equal(tiny.backoffMs(30), 1);
    } finally {
      await tiny.stop();
    }
  });
});

/** A loopback port with nothing listening: every attempt is refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

for (const backend of backends()) {
  describe(`webhook retries with the default schedule, on a simulated clock (${backend})`, () => {
    let t: TestPlatform;

    before(async () => {
      t = await startTestPlatform(backend, 'webhook-backoff');
    });
    after(async () => {
      await t?.close();
    });

    test('a failing delivery is retried with doubling delays up to the cap for 24 hours, then abandoned', async () => {
      const port = await closedPort();
      const endpoint = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/webhook_endpoints`, {
        body: { url: `http://127.0.0.1:${port}/hooks`, enabled_events: ['*'] },
      });
      assert.equal(endpoint.status, 201, endpoint.text);
      // The event is dated in the future, so the platform's own dispatcher (on the real clock) never
      // finds the delivery due; ours runs on a clock that jumps to each retry's time.
      const start = Date.UTC(2100, 0, 1);
      const sql = t.adminSql as unknown as Sql;
      const event = await sql.begin((tx) =>
        enqueueEvent(
          tx as unknown as Sql,
          {
            merchantId: t.merchantId,
            type: 'payment_intent.succeeded',
            data: { id: 'pi_backoff', object: 'payment_intent', amount: 100 },
          },
          { now: new Date(start) },
        ),
      );
      const [delivery] = await t.adminSql<{ id: string }[]>`
        select id from webhooks.deliveries where event_id = ${event.id}`;
      assert.ok(delivery);
      let clock = start;
      const d = dispatcher({ sql, now: () => clock });
      const attemptTimes: number[] = [];
      let state: { status: string; next_attempt_at: Date | null; attempts: number } | undefined;
      try {
        for (let round = 0; round < 200; round++) {
          assert.equal(await d.runOnce(), 1, `round ${round}: the delivery is due`);
          attemptTimes.push(clock);
          [state] = await t.adminSql<{ status: string; next_attempt_at: Date | null; attempts: number }[]>`
            select status, next_attempt_at, attempts from webhooks.deliveries where id = ${delivery.id}`;
          if (state?.status !== 'failed') break;
          const next = state.next_attempt_at?.getTime() as number;
          // Nothing is due a moment before the retry's time.
          clock = next - 1;
          assert.equal(await d.runOnce(), 0, 'not due before its time');
          clock = next;
        }
        assert.equal(state?.status, 'abandoned');
        assert.equal(state?.next_attempt_at, null);
        // Abandoned for good: not even a week later is it tried again.
        clock += 7 * 24 * HOUR;
        assert.equal(await d.runOnce(), 0, 'an abandoned delivery is not tried again');
      } finally {
        await d.stop();
      }

      const delays = attemptTimes.slice(1).map((at, i) => at - (attemptTimes[i] as number));
      const attempts = attemptTimes.length;
      assert.equal(state?.attempts, attempts, 'one attempt per round');
      // Each delay lies within the jitter bounds of base × 2^(n−1), capped at 1 h.
      for (const [i, delay] of delays.entries()) {
        const full = fullDelay(i + 1);
        assert.ok(
          delay >= Math.ceil(full / 2) && delay <= full,
          `delay ${i + 1}: ${delay} ms for ${full} ms`,
        );
      }
      // The first seven double (30 s … 32 min) and every later one is capped: at most 1 h, at least 30 min.
      assert.ok(delays.slice(7).every((delay) => delay >= HOUR / 2 && delay <= HOUR));
      // The retries fill the horizon: they stop within 24 h of the event, and only when the next delay
      // (at most the 1 h cap) would pass it.
      const total = (attemptTimes.at(-1) as number) - start;
      assert.ok(total <= 24 * HOUR, `last attempt ${total} ms after the event`);
      assert.ok(total > 23 * HOUR, `retries stop only near the horizon (${total} ms)`);
      // 1 + 7 doubling retries (1 h 3.5 min at most) + capped ones of 30–60 min for the rest of the 24 h.
      assert.ok(attempts >= 1 + 7 + 22 && attempts <= 1 + 7 + 46, `${attempts} attempts`);
      const log = await t.adminSql<{ attempt: number; error: string }[]>`
        select attempt, error from webhooks.delivery_attempts where delivery_id = ${delivery.id} order by attempt`;
      assert.deepEqual(
        log.map((a) => a.attempt),
        Array.from({ length: attempts }, (_, i) => i + 1),
      );
      assert.ok(log.every((a) => a.error === 'connection_refused'));
    });

    test('a silent endpoint holds at most its share of the slots; the others are delivered meanwhile, without waiting for it', async () => {
      // The silent endpoint accepts requests and answers none until told to; the other answers at once.
      const held: ServerResponse[] = [];
      let open = 0;
      let mostOpen = 0;
      let answering = false;
      // The same server also has an endpoint that answers at once: endpoints may share a host.
      const quick: string[] = [];
      const silent = createHttpServer((req, res) => {
        req.resume();
        if (req.url === '/quick') {
          quick.push(String(req.headers['cardhold-event-id']));
          res.end();
          return;
        }
        open++;
        mostOpen = Math.max(mostOpen, open);
        res.on('close', () => open--);
        if (answering) res.end();
        else held.push(res);
      });
      const arrivals: string[] = [];
      const prompt = createHttpServer((req, res) => {
        arrivals.push(String(req.headers['cardhold-event-id']));
        req.resume();
        res.end();
      });
      for (const server of [silent, prompt]) {
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      }
      const urlOf = (server: typeof silent, path: string) =>
        `http://127.0.0.1:${(server.address() as { port: number }).port}${path}`;
      const made: string[] = [];
      for (const [url, type] of [
        [urlOf(silent, '/silent'), 'payment_intent.processing'],
        [urlOf(prompt, '/prompt'), 'payment_intent.canceled'],
        [urlOf(silent, '/quick'), 'payment_intent.requires_action'],
      ] as const) {
        const r = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/webhook_endpoints`, {
          body: { url, enabled_events: [type] },
        });
        assert.equal(r.status, 201, r.text);
        made.push(r.json.id);
      }
      const [silentEndpoint] = made as [string, string, string];
      // Dated in the future, as above: only our dispatcher (its clock runs from there) finds them due.
      const start = Date.UTC(2102, 0, 1);
      const began = Date.now();
      const now = () => start + (Date.now() - began);
      const sql = t.adminSql as unknown as Sql;
      const emit = (type: string, id: string) =>
        sql.begin((tx) =>
          enqueueEvent(
            tx as unknown as Sql,
            { merchantId: t.merchantId, type, data: { id, object: 'payment_intent' } },
            { now: new Date(now()) },
          ),
        );
      // Six for the silent endpoint first (the oldest due), then one for the other.
      for (let i = 0; i < 6; i++) await emit('payment_intent.processing', `pi_silent_${i}`);
      const first = await emit('payment_intent.canceled', 'pi_prompt_1');
      const d = dispatcher({
        sql,
        now,
        settings: { pollIntervalMs: 20, requestTimeoutMs: 20_000, concurrency: 5, perEndpoint: 2 },
      });
      const until = async (what: string, done: () => boolean | Promise<boolean>) => {
        for (const limit = Date.now() + 30_000; !(await done()); ) {
          assert.ok(Date.now() < limit, `timed out waiting until ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      };
      try {
        d.start();
        await until('the prompt endpoint has the first event', () => arrivals.includes(first.id));
        await until('the silent endpoint holds its two slots', () => open === 2);
        // A new event is delivered while the silent endpoint still holds its requests: the dispatcher
        // does not wait for them (their timeout is 20 s) before claiming more.
        const second = await emit('payment_intent.canceled', 'pi_prompt_2');
        await until('the prompt endpoint has the second event', () => arrivals.includes(second.id));
        // Nor behind the silent endpoint's connections when another endpoint shares its host.
        const sameHost = await emit('payment_intent.requires_action', 'pi_quick_1');
        await until('the endpoint on the same host has its event', () => quick.includes(sameHost.id));
        assert.equal(open, 2, 'still held');
        assert.equal(mostOpen, 2, 'never more than its share of the slots');
        // Once it answers, the rest of its backlog goes through, two at a time at most.
        answering = true;
        for (const res of held.splice(0)) res.end();
        await until('all six are delivered', async () => {
          const rows = await t.adminSql<{ n: number }[]>`
            select count(*)::int as n from webhooks.deliveries
            where endpoint_id = ${silentEndpoint} and status = 'succeeded'`;
          return rows[0]?.n === 6;
        });
        assert.equal(mostOpen, 2, 'never more than its share of the slots');
      } finally {
        await d.stop();
        for (const server of [silent, prompt]) server.close();
      }
    });

    test('a manual retry while an attempt is in flight does not send the delivery a second time', async () => {
      const held: ServerResponse[] = [];
      const slow = createHttpServer((req, res) => {
        req.resume();
        held.push(res);
      });
      await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(slow.address() as { port: number }).port}/slow`;
      const endpoint = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/webhook_endpoints`, {
        body: { url, enabled_events: ['payment_intent.partially_funded'] },
      });
      assert.equal(endpoint.status, 201, endpoint.text);
      const start = Date.UTC(2103, 0, 1);
      const began = Date.now();
      const now = () => start + (Date.now() - began);
      const sql = t.adminSql as unknown as Sql;
      await sql.begin((tx) =>
        enqueueEvent(
          tx as unknown as Sql,
          { merchantId: t.merchantId, type: 'payment_intent.partially_funded', data: { id: 'pi_slow' } },
          { now: new Date(now()) },
        ),
      );
      const d = dispatcher({ sql, now, settings: { pollIntervalMs: 20, requestTimeoutMs: 20_000 } });
      const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      try {
        d.start();
        for (let i = 0; i < 1500 && held.length === 0; i++) await wait(20);
        assert.equal(held.length, 1, 'the first attempt is in flight');
        const [delivery] = await t.adminSql<{ id: string }[]>`
          select id from webhooks.deliveries where endpoint_id = ${endpoint.json.id}`;
        assert.ok(delivery);
        const retried = await t.request('POST', `${t.apiUrl}/v1/webhook_deliveries/${delivery.id}/retry`);
        assert.equal(retried.status, 202, retried.text);
        await wait(300); // fifteen polls
        assert.equal(held.length, 1, 'no second request beside the one in flight');
        for (const res of held) res.end();
        for (let i = 0; i < 1500; i++) {
          const [row] = await t.adminSql<{ status: string }[]>`
            select status from webhooks.deliveries where id = ${delivery.id}`;
          if (row?.status === 'succeeded') break;
          await wait(20);
        }
        const attempts = await t.adminSql<{ n: number }[]>`
          select count(*)::int as n from webhooks.delivery_attempts where delivery_id = ${delivery.id}`;
        assert.equal(attempts[0]?.n, 1);
      } finally {
        await d.stop();
        slow.close();
      }
    });

    test('an endpoint whose secret cannot be opened fails alone; the others in the round are attempted', async () => {
      const port = await closedPort();
      const made: string[] = [];
      for (const path of ['/sealed-shut', '/fine']) {
        const r = await t.request<{ id: string }>('POST', `${t.apiUrl}/v1/webhook_endpoints`, {
          body: { url: `http://127.0.0.1:${port}${path}`, enabled_events: ['refund.created'] },
        });
        assert.equal(r.status, 201, r.text);
        made.push(r.json.id);
      }
      const [shut, fine] = made as [string, string];
      const start = Date.UTC(2101, 0, 1);
      const sql = t.adminSql as unknown as Sql;
      const event = await sql.begin((tx) =>
        enqueueEvent(
          tx as unknown as Sql,
          { merchantId: t.merchantId, type: 'refund.created', data: { id: 're_x', object: 'refund' } },
          { now: new Date(start) },
        ),
      );
      // Other endpoints of this merchant (from other tests) may want the event too.
      const counted = await t.adminSql<{ n: number }[]>`
        select count(*)::int as n from webhooks.deliveries where event_id = ${event.id}`;
      const n = counted[0]?.n ?? 0;
      assert.ok(n >= 2);
      // Its key version gone, say: opening this endpoint's secret throws.
      const secretKey = {
        open: (_sealed: Buffer, _version: number, endpointId: string) => {
          if (endpointId === shut) throw new Error('key version 7 is not available');
          return { expose: () => 'whsec_fine' };
        },
      } as unknown as WebhookSecretKey;
      const d = new WebhookDispatcher({
        sql,
        secretKey,
        settings,
        logger: createLogger({ level: 'silent' }),
        now: () => start,
      });
      try {
        assert.equal(await d.runOnce(), n, 'all claimed, the round did not fail');
      } finally {
        await d.stop();
      }
      const rows = await t.adminSql<{ endpoint_id: string; status: string; last_error: string }[]>`
        select endpoint_id, status, last_error from webhooks.deliveries where endpoint_id in (${shut}, ${fine})`;
      const byEndpoint = new Map(rows.map((r) => [r.endpoint_id, [r.status, r.last_error]]));
      assert.deepEqual(byEndpoint.get(shut), ['failed', 'secret_unavailable']);
      assert.deepEqual(byEndpoint.get(fine), ['failed', 'connection_refused']);
    });
  });
}
