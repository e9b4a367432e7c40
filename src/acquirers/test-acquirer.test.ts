import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Agent } from 'undici';
import {
  acquirerDeclines,
  acquirerTestCards,
  allTestPans,
  testCards,
  testCvvs,
} from '../../test/fixtures/cards.ts';
import { futureYear, type HttpResult, startTestAcquirer, type TestAcquirer } from '../../test/harness.ts';
import { openLocalCa } from '../keys/local-ca.ts';
import { latencySchedule } from './latency.ts';
import type { AuthorizationView } from './schemas.ts';

let counter = 0;
const newReference = () => `att_${process.pid}_${++counter}`;

const card = (number: string, overrides: Record<string, unknown> = {}) => ({
  number,
  exp_month: 12,
  exp_year: futureYear,
  cvc: testCvvs.three,
  holder_name: 'Ada Lovelace',
  ...overrides,
});

/** An authorization request with a fresh reference. */
const authorizationBody = (number: string, extra: Record<string, unknown> = {}, cardFields = {}) => ({
  reference: newReference(),
  merchant: 'mer_demo',
  amount: 1250,
  currency: 'EUR',
  card: card(number, cardFields),
  ...extra,
});

interface Problem {
  code: string;
  status: number;
  field?: string;
}

/** The vault's way in, with a check on every answer: no card number, ever. */
function client(acquirer: TestAcquirer, vault: () => Agent) {
  const call = async <T = AuthorizationView>(
    method: string,
    route: string,
    body?: unknown,
    dispatcher: Agent = vault(),
  ): Promise<HttpResult<T>> => {
    const reply = await acquirer.request<T>(method, `${acquirer.acquirerUrl}${route}`, { body, dispatcher });
    for (const pan of allTestPans)
      assert.ok(!reply.text.includes(pan), `${method} ${route} echoed a card number`);
    // The CVC is three digits, which a timestamp or an id can hold by chance: look for it as a value.
    assert.ok(
      !new RegExp(`"[^"]*"\\s*:\\s*"?${testCvvs.three}"?[,}]`).test(reply.text),
      `${method} ${route} echoed the CVC`,
    );
    return reply;
  };
  const authorize = (number: string, extra: Record<string, unknown> = {}, cardFields = {}) =>
    call('POST', '/v1/authorizations', authorizationBody(number, extra, cardFields));
  return { call, authorize };
}

describe('test acquirer: outcomes, ledger, triggers', () => {
  let acquirer: TestAcquirer;
  let vault: Agent;
  let api: ReturnType<typeof client>;
  // Longer than any ordinary answer on a loaded machine, which the tests below tell apart from a hang.
  const hangMs = 3000;

  before(async () => {
    acquirer = await startTestAcquirer('acquirer', { env: { CARDHOLD_ACQUIRER_HANG_MS: String(hangMs) } });
    vault = await acquirer.serviceAgent('vault');
    api = client(acquirer, () => vault);
  });
  after(async () => acquirer?.close());

  const table: Array<[keyof typeof acquirerTestCards, string | null]> = [
    ['approve', null],
    ...acquirerDeclines,
  ];
  for (const [name, declineCode] of table) {
    test(`test card ${name}: ${declineCode ?? 'approved'}`, async () => {
      const reply = await api.authorize(acquirerTestCards[name]);
      assert.equal(reply.status, 200, reply.text);
      const auth = reply.json;
      assert.match(auth.id, /^aqa_[0-9A-Za-z]{22}$/);
      assert.equal(auth.object, 'authorization');
      assert.equal(auth.status, declineCode ? 'declined' : 'approved');
      assert.equal(auth.decline_code, declineCode);
      assert.equal(auth.state, declineCode ? 'declined' : 'authorized');
      assert.equal(auth.authorized_amount, declineCode ? 0 : 1250);
      assert.equal(auth.approval_code === null, declineCode !== null);
      assert.deepEqual(auth.card, { brand: 'visa', last4: acquirerTestCards[name].slice(-4) });
    });
  }

  test('any other valid card is approved; an expiry in the past declines as expired_card', async () => {
    const other = await api.authorize(testCards.mastercard);
    assert.equal(other.json.status, 'approved');
    assert.deepEqual(other.json.card, { brand: 'mastercard', last4: '4444' });
    const lastYear = new Date().getUTCFullYear() - 1;
    const old = await api.authorize(acquirerTestCards.approve, {}, { exp_year: lastYear });
    assert.equal(old.json.status, 'declined');
    assert.equal(old.json.decline_code, 'expired_card');
  });

  test('a number failing Luhn is a 422 naming the field, not its value; malformed input is a 400', async () => {
    const luhn = await api.authorize('4242424242424241');
    assert.equal(luhn.status, 422);
    const problem = luhn.json as unknown as Problem;
    assert.equal(problem.code, 'card_number_luhn_failed');
    assert.equal(problem.field, 'card.number');
    assert.ok(!luhn.text.includes('4242424242424241'));
    assert.equal(luhn.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    for (const [extra, cardFields, field] of [
      [{}, { number: '4242-4242-4242-4242' }, 'card.number'],
      [{ currency: 'eur' }, {}, 'currency'],
      [{ amount: 0 }, {}, 'amount'],
      [{ reference: 'has spaces' }, {}, 'reference'],
      [{}, { exp_month: 13 }, 'card.exp_month'],
      [{}, { cvc: '12' }, 'card.cvc'],
    ] as const) {
      const reply = await api.authorize(acquirerTestCards.approve, extra, cardFields);
      assert.equal(reply.status, 400, field);
      assert.equal((reply.json as unknown as Problem).field, field);
    }
  });

  test('captures, voids and refunds over HTTP: limits and states enforced, each refusal with its code', async () => {
    const { json: auth } = await api.authorize(acquirerTestCards.approve, { amount: 1000 });
    const base = `/v1/authorizations/${auth.id}`;
    const expectProblem = async (route: string, body: unknown, status: number, code: string) => {
      const reply = await api.call<Problem>('POST', `${base}${route}`, body);
      assert.equal(reply.status, status, `${route} ${reply.text}`);
      assert.equal(reply.json.code, code);
    };
    assert.equal(
      (await api.call('POST', `${base}/captures`, { amount: 600, reference: 'cap-1' })).json.state,
      'partially_captured',
    );
    await expectProblem('/captures', { amount: 401, reference: 'cap-2' }, 422, 'amount_exceeds_authorized');
    await expectProblem('/void', { reference: 'void-1' }, 409, 'invalid_state');
    await expectProblem('/refunds', { amount: 601, reference: 'ref-1' }, 422, 'amount_exceeds_captured');
    const captured = await api.call('POST', `${base}/captures`, { amount: 400, reference: 'cap-2' });
    assert.equal(captured.json.state, 'captured');
    assert.equal(captured.json.captured_amount, 1000);
    const refunded = await api.call('POST', `${base}/refunds`, { amount: 1000, reference: 'ref-1' });
    assert.equal(refunded.json.refunded_amount, 1000);
    await expectProblem('/refunds', { amount: 1, reference: 'ref-2' }, 422, 'amount_exceeds_captured');
    const read = await api.call('GET', base);
    assert.deepEqual(read.json, refunded.json, 'a read shows the books as they are');

    // A final capture over HTTP releases the rest; a capture after it is refused.
    const { json: closing } = await api.authorize(acquirerTestCards.approve, { amount: 1000 });
    const closingBase = `/v1/authorizations/${closing.id}`;
    const last = await api.call<{ state: string; released_amount: number }>(
      'POST',
      `${closingBase}/captures`,
      {
        amount: 250,
        reference: 'cap-final',
        final: true,
      },
    );
    assert.deepEqual([last.json.state, last.json.released_amount], ['captured', 750]);
    const after = await api.call<Problem>('POST', `${closingBase}/captures`, {
      amount: 1,
      reference: 'cap-late',
    });
    assert.deepEqual([after.status, after.json.code], [409, 'invalid_state']);

    const { json: voidable } = await api.authorize(acquirerTestCards.approve);
    const voided = await api.call('POST', `/v1/authorizations/${voidable.id}/void`, { reference: 'v' });
    assert.equal(voided.json.state, 'voided');
    const { json: declined } = await api.authorize(acquirerTestCards.stolenCard);
    for (const [id, route, body] of [
      [voidable.id, 'captures', { amount: 1, reference: 'c' }],
      [voidable.id, 'void', { reference: 'another-void' }],
      [voidable.id, 'refunds', { amount: 1, reference: 'r' }],
      [declined.id, 'captures', { amount: 1, reference: 'c' }],
      [declined.id, 'void', { reference: 'v' }],
      [declined.id, 'refunds', { amount: 1, reference: 'r' }],
    ] as const) {
      const reply = await api.call<Problem>('POST', `/v1/authorizations/${id}/${route}`, body);
      assert.equal(
        reply.status,
        409,
        `${route} on ${id === declined.id ? 'a declined' : 'a voided'} authorization`,
      );
      assert.equal(reply.json.code, 'invalid_state');
    }
    const missing = await api.call<Problem>('GET', `/v1/authorizations/aqa_${'Z'.repeat(22)}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.json.code, 'authorization_not_found');
  });

  test('references are idempotent: a repeated authorization or capture replays, it is not processed again', async () => {
    const body = authorizationBody(acquirerTestCards.approve, { amount: 900, capture: true });
    const first = await api.call('POST', '/v1/authorizations', body);
    assert.equal(first.json.state, 'captured');
    const again = await api.call('POST', '/v1/authorizations', body);
    assert.deepEqual(again.json, first.json);
    const { json: auth } = await api.authorize(acquirerTestCards.approve, { amount: 500 });
    const capture = { amount: 200, reference: 'same-capture' };
    await api.call('POST', `/v1/authorizations/${auth.id}/captures`, capture);
    const replay = await api.call('POST', `/v1/authorizations/${auth.id}/captures`, capture);
    assert.equal(replay.status, 200);
    assert.equal(replay.json.captured_amount, 200);
    assert.equal(replay.json.captures.length, 1);
  });

  test('the unknown trigger records an approval and drops the connection; sync by reference settles it', async () => {
    const body = authorizationBody(acquirerTestCards.unknown, { amount: 4200, currency: 'GBP' });
    const reference = body.reference;
    await assert.rejects(
      api.call('POST', '/v1/authorizations', body),
      (error: Error) => error instanceof TypeError && /closed|socket/i.test(String(error.cause)),
      'the connection drops without an answer',
    );
    const synced = await api.call('GET', `/v1/authorizations?reference=${reference}`);
    assert.equal(synced.status, 200);
    assert.equal(synced.json.reference, reference);
    assert.equal(synced.json.status, 'approved');
    assert.equal(synced.json.authorized_amount, 4200);
    assert.deepEqual((await api.call('GET', `/v1/authorizations/${synced.json.id}`)).json, synced.json);
    const unseen = await api.call<Problem>('GET', `/v1/authorizations?reference=${newReference()}`);
    assert.equal(unseen.status, 404);
    assert.equal(unseen.json.code, 'authorization_not_found');
  });

  test('the server_error trigger answers 503 at once and records nothing', async () => {
    const body = authorizationBody(acquirerTestCards.serverError);
    const reference = body.reference;
    const started = performance.now();
    const reply = await api.call<Problem>('POST', '/v1/authorizations', body);
    assert.equal(reply.status, 503);
    assert.equal(reply.json.code, 'acquirer_unavailable');
    assert.ok(performance.now() - started < hangMs);
    assert.equal((await api.call('GET', `/v1/authorizations?reference=${reference}`)).status, 404);
  });

  test('the timeout trigger answers nothing before the caller gives up, then 504, and records nothing', async () => {
    const body = authorizationBody(acquirerTestCards.timeout);
    const reference = body.reference;
    await assert.rejects(
      fetch(`${acquirer.acquirerUrl}/v1/authorizations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        dispatcher: vault,
        signal: AbortSignal.timeout(200),
      } as RequestInit),
      (error: Error) => error.name === 'TimeoutError',
    );
    const started = performance.now();
    const late = await api.call<Problem>('POST', '/v1/authorizations', body);
    assert.ok(performance.now() - started >= hangMs - 5, 'held for the configured time');
    assert.equal(late.status, 504);
    assert.equal(late.json.code, 'acquirer_timeout');
    assert.equal((await api.call('GET', `/v1/authorizations?reference=${reference}`)).status, 404);
  });
});

describe('test acquirer: only the vault certificate transacts', () => {
  let acquirer: TestAcquirer;
  let rogueDir: string;
  before(async () => {
    acquirer = await startTestAcquirer('acquirer-mtls');
    rogueDir = await mkdtemp(path.join(tmpdir(), 'cardhold-rogue-ca-'));
  });
  after(async () => {
    await acquirer?.close();
    await rm(rogueDir, { recursive: true, force: true });
  });

  test("the vault's certificate from the local CA names spiffe://cardhold/vault and may authenticate a client", async () => {
    const issued = await (await openLocalCa(acquirer.dataDir)).certificate('vault');
    const certificate = new X509Certificate(issued.certPem);
    assert.ok(certificate.subjectAltName?.split(', ').includes('URI:spiffe://cardhold/vault'));
    assert.ok(certificate.keyUsage?.includes('1.3.6.1.5.5.7.3.2'), 'extended key usage includes clientAuth');
  });

  test('no certificate, another identity, another CA or a bearer token: refused; the vault: served', async () => {
    const vault = await acquirer.serviceAgent('vault');
    const attempts: Array<[string, Agent | undefined, string | undefined]> = [
      ['no certificate', undefined, undefined],
      ['the api identity', await acquirer.serviceAgent('api'), undefined],
      ['the acquirer itself', await acquirer.serviceAgent('acquirer'), undefined],
      [
        "the vault's name from another CA",
        await acquirer.serviceAgent('vault', await openLocalCa(rogueDir)),
        undefined,
      ],
      ['a bearer token', undefined, 'sk_test_not_for_the_acquirer'],
    ];
    const authorize = authorizationBody(acquirerTestCards.approve);
    for (const [name, dispatcher, key] of attempts) {
      for (const [method, route, body] of [
        ['POST', '/v1/authorizations', authorize],
        ['GET', `/v1/authorizations?reference=${authorize.reference}`, undefined],
      ] as const) {
        const reply = await acquirer.request<Problem>(method, `${acquirer.acquirerUrl}${route}`, {
          body,
          key: key ?? null,
          ...(dispatcher ? { dispatcher } : {}),
        });
        assert.ok([401, 403].includes(reply.status), `${name} ${method} ${route} → ${reply.status}`);
        assert.equal(reply.headers.get('content-type'), 'application/problem+json; charset=utf-8');
        for (const pan of allTestPans) assert.ok(!reply.text.includes(pan));
      }
    }
    assert.equal(
      (
        await acquirer.request(
          'GET',
          `${acquirer.acquirerUrl}/v1/authorizations?reference=${authorize.reference}`,
          {
            dispatcher: vault,
          },
        )
      ).status,
      404,
      'nothing was recorded by the refused attempts',
    );
    const served = await acquirer.request<AuthorizationView>(
      'POST',
      `${acquirer.acquirerUrl}/v1/authorizations`,
      {
        body: authorize,
        dispatcher: vault,
      },
    );
    assert.equal(served.status, 200);
    assert.equal(served.json.status, 'approved');
    for (const route of ['/healthz', '/readyz', '/docs/json']) {
      assert.equal((await acquirer.request('GET', `${acquirer.acquirerUrl}${route}`)).status, 200, route);
    }
  });
});

describe('test acquirer: seeded latency', () => {
  const seed = 20_250;
  const maxMs = 150;
  let acquirer: TestAcquirer;
  before(async () => {
    acquirer = await startTestAcquirer('acquirer-latency', {
      env: { CARDHOLD_ACQUIRER_LATENCY_MS: String(maxMs), CARDHOLD_ACQUIRER_LATENCY_SEED: String(seed) },
    });
  });
  after(async () => acquirer?.close());

  test("each request waits the seed's next delay, in order", async () => {
    const expected = latencySchedule(seed, maxMs, 5);
    assert.ok(Math.max(...expected) >= 60, 'the schedule has delays worth measuring');
    const vault = await acquirer.serviceAgent('vault');
    const url = `${acquirer.acquirerUrl}/v1/authorizations?reference=latency-probe`;
    await acquirer.request('GET', `${acquirer.acquirerUrl}/healthz`, { dispatcher: vault }); // warm the connection
    const observed: number[] = [];
    for (let i = 0; i < expected.length; i++) {
      const started = performance.now();
      const reply = await acquirer.request('GET', url, { dispatcher: vault });
      observed.push(performance.now() - started);
      assert.equal(reply.status, 404);
    }
    for (const [i, ms] of expected.entries()) {
      assert.ok(
        (observed[i] as number) >= ms - 1,
        `request ${i} took ${observed[i]} ms, expected at least ${ms}`,
      );
    }
  });
});
