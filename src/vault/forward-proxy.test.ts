import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, mock, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { Agent } from 'undici';
import { testCards, testCvvs } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { openLocalCa } from '../keys/local-ca.ts';
import { panRedaction } from '../shared/pan-detect.ts';
import { CvvSlots } from './cvv-slots.ts';
import { scrub } from './forward-proxy.ts';

interface Received {
  path: string;
  body: string;
  /** The request's `x-echo` header, which /p/raw answers with. */
  echo: string | undefined;
  clientIdentity: string | undefined;
}

/**
 * A stand-in processor on loopback, with a certificate from the platform's CA. Its paths choose its
 * behaviour: answer (echoing the card back, so that scrubbing is tested), decline, 503, hang, drop,
 * `/p/status/NNN` (answer with that status), `/p/raw` (answer with the request body as it came, in its
 * content type, and the request's `x-echo` header as `x-request-id`).
 */
async function startProcessor(
  dataDir: string,
): Promise<{ url: string; received: Received[]; server: Server }> {
  const ca = await openLocalCa(dataDir);
  const issued = await ca.certificate('acquirer');
  const received: Received[] = [];
  const server = createServer(
    { key: issued.keyPem, cert: issued.certPem, ca: ca.caPem, requestCert: true, rejectUnauthorized: false },
    (req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        const socket = req.socket as TLSSocket;
        const san = socket.getPeerCertificate()?.subjectaltname ?? '';
        const identity = san
          .split(', ')
          .find((n) => n.startsWith('URI:'))
          ?.slice(4);
        const echoHeader = req.headers['x-echo'];
        received.push({
          path: req.url ?? '',
          body,
          echo: typeof echoHeader === 'string' ? echoHeader : undefined,
          clientIdentity: socket.authorized ? identity : undefined,
        });
        const path = (req.url ?? '').split('?')[0] ?? '';
        if (path === '/p/hang') return; // never answers
        if (path === '/p/drop') {
          req.socket.destroy();
          return;
        }
        if (path === '/p/raw') {
          res.writeHead(200, {
            'content-type': req.headers['content-type'] ?? 'text/plain',
            ...(typeof echoHeader === 'string' ? { 'x-request-id': echoHeader } : {}),
          });
          res.end(body);
          return;
        }
        const asked = /^\/p\/status\/(\d{3})$/.exec(path);
        const status = asked
          ? Number(asked[1])
          : path === '/p/decline'
            ? 402
            : path === '/p/unavailable'
              ? 503
              : 200;
        res.writeHead(status, { 'content-type': 'application/json', 'set-cookie': 'session=secret' });
        // A careless processor echoes the card: the vault must scrub it before answering.
        res.end(JSON.stringify({ status: status === 200 ? 'approved' : 'declined', echo: body, cvc: 'x' }));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `https://127.0.0.1:${port}`, received, server };
}

for (const backend of backends()) {
  describe(`forward proxy (${backend})`, () => {
    let t: TestPlatform;
    let processor: Awaited<ReturnType<typeof startProcessor>>;
    let apiAgent: Agent;
    let deadUrl: string;
    let rogue: Awaited<ReturnType<typeof startProcessor>>;
    const dataDirHolder: { dir?: string } = {};

    before(async () => {
      const { mkdtemp } = await import('node:fs/promises');
      const { tmpdir } = await import('node:os');
      const path = await import('node:path');
      dataDirHolder.dir = await mkdtemp(path.join(tmpdir(), 'cardhold-forward-'));
      processor = await startProcessor(dataDirHolder.dir);
      // A processor whose certificate comes from another CA: allow-listed, and still refused.
      rogue = await startProcessor(await mkdtemp(path.join(tmpdir(), 'cardhold-rogue-')));
      // A port nobody listens on: a processor that cannot be reached at all.
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      deadUrl = `https://127.0.0.1:${(probe.address() as AddressInfo).port}`;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      t = await startTestPlatform(backend, 'forward', {
        dataDir: dataDirHolder.dir,
        env: {
          CARDHOLD_FORWARD_ALLOWLIST: `${processor.url}/p/,${deadUrl},${rogue.url}/p/`,
          // The hang never answers; an ordinary answer on a loaded CI machine must not count as a timeout.
          CARDHOLD_FORWARD_TIMEOUT_MS: '2500',
        },
      });
      const ca = await openLocalCa(t.dataDir);
      const api = await ca.certificate('api');
      apiAgent = new Agent({ connect: { ca: ca.caPem, cert: api.certPem, key: api.keyPem } });
    });
    after(async () => {
      await t?.close();
      await apiAgent?.close();
      for (const server of [processor?.server, rogue?.server]) {
        server?.closeAllConnections();
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      }
    });

    const tokenize = async (maxUses = 3) => {
      const r = await t.request<{ token: { id: string }; cvv_slot: { id: string } }>(
        'POST',
        `${t.vaultUrl}/v1/tokens`,
        {
          body: {
            pan: testCards.visa,
            exp_month: 7,
            exp_year: futureYear,
            cvv: testCvvs.three,
            holder_name: 'Ada "Quote" Lovelace',
            cvv_options: { max_uses: maxUses },
          },
        },
      );
      assert.equal(r.status, 201);
      return { token: r.json.token.id, slot: r.json.cvv_slot.id };
    };
    const template =
      '{"number":"{{card.number}}","exp":"{{card.exp_month_2}}/{{card.exp_year_2}}","cvc":"{{card.cvv}}","name":"{{card.holder_name}}"}';
    const forward = (body: unknown, key: string | null = null, dispatcher: Agent = apiAgent) =>
      t.request<{
        outcome: string;
        sent: boolean;
        response: { status: number; headers: Record<string, string>; body: string } | null;
        cvv_slot: { id: string; destroyed: boolean } | null;
        code?: string;
        field?: string;
      }>('POST', `${t.vaultUrl}/v1/forward`, {
        key,
        body,
        headers: { 'cardhold-merchant': t.merchantId },
        dispatcher,
      });
    const call = (token: string, slot: string | undefined, path: string, body = template) =>
      forward({
        token,
        ...(slot ? { cvv_slot: slot } : {}),
        request: {
          method: 'POST',
          url: `${path.startsWith('https://') ? '' : processor.url}${path}`,
          headers: { 'content-type': 'application/json' },
          body,
        },
      });
    /** The test CVV as a number of its own (17390 holds its digits and is an amount, not a CVV). */
    const noCvv = (text: string, cvv: string = testCvvs.three) =>
      !new RegExp(`(?<!\\d)${cvv}(?!\\d)`).test(text);
    const slotExists = async (slot: string) => {
      const key = `${CvvSlots.keyPrefix(t.merchantId)}${slot}`;
      if (t.redis) return (await t.redis.exists(key)) === 1;
      const r = await t.request('GET', `${t.vaultUrl}/v1/cvv-slots/${slot}`);
      return r.status === 200;
    };

    test('fills the template, presents the vault identity, scrubs the answer and destroys the CVV on an answer', async () => {
      const { token, slot } = await tokenize();
      const r = await call(token, slot, '/p/ok');
      assert.equal(r.status, 200);
      assert.equal(r.json.outcome, 'answered');
      assert.equal(r.json.response?.status, 200);
      const got = processor.received.at(-1) as Received;
      assert.equal(got.clientIdentity, 'spiffe://cardhold/vault');
      const sent = JSON.parse(got.body) as { number: string; exp: string; cvc: string; name: string };
      // Compared without printing: a failing assert must not write a card number to the test output.
      assert.ok(sent.number === testCards.visa, 'the card number was filled in');
      assert.ok(sent.cvc === testCvvs.three, 'the CVV was filled in');
      assert.equal(sent.exp, `07/${String(futureYear).slice(-2)}`);
      assert.equal(sent.name, 'Ada "Quote" Lovelace', 'JSON-escaped where it stands');
      // The echo is scrubbed: no card number, no CVV field value, no cookie. The echo is our request as a
      // JSON string inside the processor's JSON, so its CVV field is escaped once: read it parsed.
      assert.ok(!r.text.includes(testCards.visa));
      const answer = JSON.parse(r.json.response?.body ?? '{}') as { echo: string };
      const echoed = JSON.parse(answer.echo) as { cvc: string };
      assert.ok(echoed.cvc === '[REDACTED]', 'the echoed CVV field is redacted');
      assert.ok(noCvv(r.json.response?.body ?? ''), 'no CVV anywhere in the answer');
      assert.equal(r.json.response?.headers['set-cookie'], undefined);
      assert.deepEqual(r.json.cvv_slot, { id: slot, destroyed: true });
      assert.equal(await slotExists(slot), false);
      const audit = await t.adminSql<{ action: string }[]>`
        select action from audit.records
        where resource_id in (${token}, ${slot}) and action <> 'cvv.read' order by seq`;
      assert.deepEqual(
        audit.map((a) => a.action),
        ['token.create', 'cvv.create', 'token.forward', 'cvv.use'],
      );
    });

    test('a decline (402) is a definitive answer: the CVV is destroyed', async () => {
      const { token, slot } = await tokenize();
      const r = await call(token, slot, '/p/decline');
      assert.equal(r.json.outcome, 'answered');
      assert.equal(r.json.response?.status, 402);
      assert.equal(r.json.cvv_slot?.destroyed, true);
      assert.equal(await slotExists(slot), false);
    });

    test('a 5xx, a timeout and a dropped connection keep the CVV for a retry, until its last use', async () => {
      const { token, slot } = await tokenize(3);
      const unavailable = await call(token, slot, '/p/unavailable');
      assert.equal(unavailable.json.outcome, 'answered');
      assert.equal(unavailable.json.cvv_slot?.destroyed, false);
      assert.equal(await slotExists(slot), true);
      const hang = await call(token, slot, '/p/hang');
      assert.equal(hang.json.outcome, 'timeout');
      assert.equal(hang.json.sent, true);
      assert.equal(hang.json.response, null);
      assert.equal(await slotExists(slot), true);
      const drop = await call(token, slot, '/p/drop');
      assert.equal(drop.json.outcome, 'connection_lost');
      assert.equal(drop.json.sent, true);
      // Three uses spent: the slot is gone although no answer ever came.
      assert.equal(await slotExists(slot), false);
      const again = await call(token, slot, '/p/ok');
      assert.equal(again.status, 404);
      assert.equal(again.json.code, 'cvv_slot_not_found');
    });

    test('an unreachable processor: nothing was sent, the CVV stays', async () => {
      const { token, slot } = await tokenize();
      const r = await call(token, slot, `${deadUrl}/v1/x`);
      assert.equal(r.json.outcome, 'connection_failed');
      assert.equal(r.json.sent, false);
      assert.equal(await slotExists(slot), true);
    });

    test('a processor whose certificate is not from a trusted CA gets nothing', async () => {
      const { token, slot } = await tokenize();
      const r = await call(token, slot, `${rogue.url}/p/ok`);
      assert.equal(r.json.outcome, 'connection_failed');
      assert.equal(r.json.sent, false);
      assert.equal(rogue.received.length, 0);
      assert.equal(await slotExists(slot), true);
    });

    test('targets off the allow-list, plain http, unknown placeholders and card data in URLs are refused', async () => {
      const { token, slot } = await tokenize();
      const cases: Array<[string, unknown, string]> = [
        [
          'other host',
          { token, request: { method: 'POST', url: 'https://example.com/p/ok' } },
          'forward_target_not_allowed',
        ],
        [
          'other path',
          { token, request: { method: 'POST', url: `${processor.url}/other` } },
          'forward_target_not_allowed',
        ],
        [
          'path escape',
          { token, request: { method: 'POST', url: `${processor.url}/p/../other` } },
          'forward_target_not_allowed',
        ],
        ...['%2f', '%2F', '%5c', '%2e%2e'].map((encoded): [string, unknown, string] => [
          `encoded ${encoded} in the path`,
          { token, request: { method: 'POST', url: `${processor.url}/p/..${encoded}other` } },
          'forward_target_not_allowed',
        ]),
        [
          'http',
          { token, request: { method: 'POST', url: processor.url.replace('https', 'http') + '/p/ok' } },
          'forward_target_not_allowed',
        ],
        [
          'unknown placeholder',
          { token, request: { method: 'POST', url: `${processor.url}/p/ok`, body: '{{card.pin}}' } },
          'forward_template_invalid',
        ],
        [
          'card in url',
          { token, request: { method: 'POST', url: `${processor.url}/p/{{card.number}}` } },
          'forward_template_invalid',
        ],
        [
          'cvv without slot',
          { token, request: { method: 'POST', url: `${processor.url}/p/ok`, body: '{{card.cvv}}' } },
          'forward_template_invalid',
        ],
        [
          'host header',
          {
            token,
            cvv_slot: slot,
            request: {
              method: 'POST',
              url: `${processor.url}/p/ok`,
              headers: { Host: 'x' },
              body: '{{card.cvv}}',
            },
          },
          'forward_template_invalid',
        ],
      ];
      const before = processor.received.length;
      for (const [name, body, code] of cases) {
        const r = await forward(body);
        assert.equal(r.status, 422, name);
        assert.equal(r.json.code, code, name);
        assert.ok(r.json.field, `${name} names the field`);
      }
      assert.equal(processor.received.length, before, 'nothing was sent');
      assert.equal(await slotExists(slot), true);
    });

    test('only the api’s service identity may forward: a merchant secret key is refused', async () => {
      const { token } = await tokenize();
      const r = await t.request('POST', `${t.vaultUrl}/v1/forward`, {
        body: { token, request: { method: 'POST', url: `${processor.url}/p/ok` } },
      });
      assert.equal(r.status, 403);
    });

    test('a foreign or missing token answers 404 and sends nothing', async () => {
      const before = processor.received.length;
      const r = await call(`tok_${'Z'.repeat(22)}`, undefined, '/p/ok', '{"n":"{{card.number}}"}');
      assert.equal(r.status, 404);
      assert.equal(r.json.code, 'token_not_found');
      assert.equal(processor.received.length, before);
    });

    test('the CVV is scrubbed from the answer in every shape it may come back in, and nothing else changes', async () => {
      // /p/raw answers with what the vault sent: the filled template is the processor's answer.
      const shapes: Array<{
        name: string;
        type: string;
        body: string;
        header?: string;
        expected: string;
        /** False for the shape that only the vault's knowledge of the CVV it filled in can catch. */
        byName?: false;
      }> = [
        {
          name: 'JSON string',
          type: 'application/json',
          body: '{"cvc":"{{card.cvv}}","amount":17390,"ref":"17390"}',
          expected: '{"cvc":"[REDACTED]","amount":17390,"ref":"17390"}',
        },
        {
          name: 'JSON inside a JSON string',
          type: 'application/json',
          body: '{"echo":"{\\"cvc\\":\\"{{card.cvv}}\\",\\"amount\\":17390}"}',
          expected: '{"echo":"{\\"cvc\\":\\"[REDACTED]\\",\\"amount\\":17390}"}',
        },
        {
          name: 'JSON escaped twice',
          type: 'application/json',
          body: '{"a":"{\\"b\\":\\"{\\\\\\"CVV2\\\\\\": \\\\\\"{{card.cvv}}\\\\\\", \\\\\\"amount\\\\\\": 17390}\\"}"}',
          expected:
            '{"a":"{\\"b\\":\\"{\\\\\\"CVV2\\\\\\": \\\\\\"[REDACTED]\\\\\\", \\\\\\"amount\\\\\\": 17390}\\"}"}',
        },
        {
          name: 'JSON number',
          type: 'application/json',
          body: '{"cvc":{{card.cvv}},"amount":17390}',
          expected: '{"cvc":"[REDACTED]","amount":17390}',
        },
        {
          name: 'camelCase and snake_case names',
          type: 'application/json',
          body: '{"securityCode":"{{card.cvv}}","cardVerificationValue":"{{card.cvv}}","security_code":"{{card.cvv}}","cid":"{{card.cvv}}","amount":17390}',
          expected:
            '{"securityCode":"[REDACTED]","cardVerificationValue":"[REDACTED]","security_code":"[REDACTED]","cid":"[REDACTED]","amount":17390}',
        },
        {
          name: 'form',
          type: 'application/x-www-form-urlencoded',
          body: 'cvc={{card.cvv}}&amount=17390&card[cvc]={{card.cvv}}&card%5Bcvv%5D={{card.cvv}}&cvc_check=pass',
          expected:
            'cvc=[REDACTED]&amount=17390&card[cvc]=[REDACTED]&card%5Bcvv%5D=[REDACTED]&cvc_check=pass',
        },
        {
          name: 'XML',
          type: 'application/xml',
          body: '<auth><amount>17390</amount><cvc>{{card.cvv}}</cvc><card cvv="{{card.cvv}}"/></auth>',
          expected: '<auth><amount>17390</amount><cvc>[REDACTED]</cvc><card cvv="[REDACTED]"/></auth>',
        },
        {
          name: 'other names processors use, and a list',
          type: 'application/json',
          body: '{"cardCode":{{card.cvv}},"card_cvv":"{{card.cvv}}","cvn":{{card.cvv}},"verification_value":"{{card.cvv}}","cvc":[{{card.cvv}}],"amount":17390}',
          expected:
            '{"cardCode":"[REDACTED]","card_cvv":"[REDACTED]","cvn":"[REDACTED]","verification_value":"[REDACTED]","cvc":["[REDACTED]"],"amount":17390}',
        },
        {
          name: 'key: value lines',
          type: 'text/plain',
          body: 'status: approved\ncvc: {{card.cvv}}\namount: 17390\n<cardCode>{{card.cvv}}</cardCode>',
          expected: 'status: approved\ncvc: [REDACTED]\namount: 17390\n<cardCode>[REDACTED]</cardCode>',
        },
        {
          name: 'the substituted CVV under another name, as a whole quoted string',
          byName: false,
          type: 'application/json',
          body: '{"check":"{{card.cvv}}","echo":"{\\"v\\":\\"{{card.cvv}}\\"}","amount":17390,"ref":"17390"}',
          expected: '{"check":"[REDACTED]","echo":"{\\"v\\":\\"[REDACTED]\\"}","amount":17390,"ref":"17390"}',
        },
        {
          name: 'a dotted form name (Adyen) and a percent-encoded one',
          type: 'application/x-www-form-urlencoded',
          body: 'card.cvc={{card.cvv}}&amount=17390&card%5Bcvc%5D%3D{{card.cvv}}%26amount%3D17390',
          expected: 'card.cvc=[REDACTED]&amount=17390&card%5Bcvc%5D%3D[REDACTED]%26amount%3D17390',
        },
        {
          name: 'an XML element named cvNumber (CyberSource)',
          type: 'application/xml',
          body: '<card><cvNumber>{{card.cvv}}</cvNumber><amount>17390</amount></card>',
          expected: '<card><cvNumber>[REDACTED]</cvNumber><amount>17390</amount></card>',
        },
        {
          name: 'the substituted CVV under any name, unquoted: CSV, JSON number, XML, form',
          byName: false,
          type: 'text/plain',
          body: 'x,{{card.cvv}},17390\n{"sec":{{card.cvv}},"amount":17390}\n<v>{{card.cvv}}</v>\nv={{card.cvv}}&amount=17390',
          expected:
            'x,"[REDACTED]",17390\n{"sec":"[REDACTED]","amount":17390}\n<v>[REDACTED]</v>\nv=[REDACTED]&amount=17390',
        },
        {
          name: 'header',
          type: 'application/json',
          body: '{"amount":17390}',
          header: 'cvc={{card.cvv}}; amount=17390',
          expected: '{"amount":17390}',
        },
      ];
      // Each shape twice: with the CVV the vault filled in from the slot (both rules apply), and as a
      // request without card data carrying a CVV the vault does not know (only the field rules apply).
      const runs = shapes.flatMap((shape) => [
        { ...shape, cvv: testCvvs.three as string, filled: true },
        ...(shape.byName === false
          ? []
          : [
              {
                ...shape,
                name: `${shape.name} (not filled in by the vault)`,
                body: shape.body.replaceAll('{{card.cvv}}', testCvvs.four),
                header: shape.header?.replaceAll('{{card.cvv}}', testCvvs.four),
                cvv: testCvvs.four as string,
                filled: false,
              },
            ]),
      ]);
      for (const run of runs) {
        const card = run.filled ? await tokenize() : undefined;
        const r = await forward({
          ...(card ? { token: card.token, cvv_slot: card.slot } : {}),
          request: {
            method: 'POST',
            url: `${processor.url}/p/raw`,
            headers: { 'content-type': run.type, ...(run.header ? { 'x-echo': run.header } : {}) },
            body: run.body,
          },
        });
        assert.equal(r.status, 200, run.name);
        assert.equal(r.json.response?.status, 200, run.name);
        const sent = processor.received.at(-1) as Received;
        // Compared without printing: a failing assert must not write a CVV to the test output.
        assert.ok(!noCvv(`${sent.body} ${sent.echo ?? ''}`, run.cvv), `${run.name}: the CVV went out`);
        const body = r.json.response?.body ?? '';
        assert.ok(noCvv(body, run.cvv), `${run.name}: no CVV in the body`);
        assert.ok(body.includes('17390'), `${run.name}: the amount is still there`);
        assert.ok(body === run.expected, `${run.name}: only the CVV was replaced`);
        if (run.header) {
          const id = r.json.response?.headers['x-request-id'] ?? '';
          assert.ok(noCvv(id, run.cvv), `${run.name}: no CVV in the header`);
          assert.ok(id === 'cvc=[REDACTED]; amount=17390', `${run.name}: only the CVV was replaced`);
        }
      }
    });

    test('only an authorization answer (2xx, 402) destroys the CVV; any other status keeps it for a retry', async () => {
      for (const status of [200, 402]) {
        const { token, slot } = await tokenize(3);
        const r = await call(token, slot, `/p/status/${status}`);
        assert.equal(r.json.outcome, 'answered', `${status}`);
        assert.equal(r.json.response?.status, status);
        assert.deepEqual(r.json.cvv_slot, { id: slot, destroyed: true }, `${status} destroys the slot`);
        assert.equal(await slotExists(slot), false, `${status} destroys the slot`);
      }
      for (const status of [400, 401, 403, 404, 408, 409, 429, 500, 503]) {
        const { token, slot } = await tokenize(3);
        const r = await call(token, slot, `/p/status/${status}`);
        assert.equal(r.json.outcome, 'answered', `${status}`);
        assert.equal(r.json.response?.status, status);
        assert.deepEqual(r.json.cvv_slot, { id: slot, destroyed: false }, `${status} keeps the slot`);
        const view = await t.request<{ uses_remaining: number }>('GET', `${t.vaultUrl}/v1/cvv-slots/${slot}`);
        assert.equal(view.status, 200, `${status} keeps the slot`);
        assert.equal(view.json.uses_remaining, 2, `${status} spent one use`);
        const retry = await call(token, slot, '/p/ok');
        assert.equal(retry.json.response?.status, 200, `the retry after ${status} is answered`);
        const again = JSON.parse((processor.received.at(-1) as Received).body) as { cvc: string };
        assert.ok(again.cvc === testCvvs.three, `the retry after ${status} carried the CVV`);
        assert.deepEqual(retry.json.cvv_slot, { id: slot, destroyed: true }, `then the answer destroys it`);
        assert.equal(await slotExists(slot), false);
      }
    });

    test('a forward without card data is on record before it is sent, and not sent if it cannot be', async () => {
      const lastSeq = async () =>
        (await t.adminSql<{ seq: string }[]>`select coalesce(max(seq), 0)::text as seq from audit.records`)[0]
          ?.seq ?? '0';
      const mark = await lastSeq();
      const sentBefore = processor.received.length;
      const r = await forward({
        request: { method: 'GET', url: `${processor.url}/p/ok?reference=att_12345` },
      });
      assert.equal(r.status, 200);
      assert.equal(r.json.outcome, 'answered');
      assert.equal(r.json.cvv_slot, null);
      assert.equal(processor.received.length, sentBefore + 1);
      const records = await t.adminSql<
        { action: string; resource_type: string; resource_id: string; merchant_id: string; outcome: string }[]
      >`select action, resource_type, resource_id, merchant_id, outcome, details
        from audit.records where seq > ${mark}::bigint order by seq`;
      assert.equal(records.length, 1, 'exactly one record');
      assert.deepEqual(records[0], {
        action: 'processor.forward',
        resource_type: 'processor',
        resource_id: processor.url,
        merchant_id: t.merchantId,
        outcome: 'success',
        details: { target: `${processor.url}/p/ok`, method: 'GET' },
      });

      // With the trail unwritable, neither a forward without card data nor one with it goes out.
      const { token, slot } = await tokenize();
      const sentBeforeRevoke = processor.received.length;
      await t.adminSql`revoke insert on audit.records from cardhold_vault_runtime`;
      try {
        const plain = await forward({
          request: {
            method: 'POST',
            url: `${processor.url}/p/ok`,
            headers: { 'content-type': 'application/json' },
            body: '{"amount":17390}',
          },
        });
        assert.equal(plain.status, 503);
        assert.equal(plain.json.code, 'audit_unavailable');
        const card = await call(token, slot, '/p/ok');
        assert.equal(card.status, 503);
        assert.equal(card.json.code, 'audit_unavailable', 'the same error as a card-carrying forward');
      } finally {
        await t.adminSql`grant insert on audit.records to cardhold_vault_runtime`;
      }
      assert.equal(processor.received.length, sentBeforeRevoke, 'nothing reached the processor');
      assert.equal(await slotExists(slot), true);
    });

    test('a CVV slot that cannot be destroyed after an answer: the answer still comes back, the failure is logged and on record', async () => {
      const { token, slot } = await tokenize(3);
      const store = t.platform.services.vault?.volatile;
      assert.ok(store);
      const down = mock.method(store, 'delete', async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379 (sentinel-detail)'), {
          code: 'ECONNREFUSED',
        });
      });
      let r: Awaited<ReturnType<typeof call>>;
      try {
        r = await call(token, slot, '/p/ok');
      } finally {
        down.mock.restore();
      }
      assert.equal(down.mock.callCount(), 1, 'the destruction was tried');
      assert.equal(r.status, 200, 'the processor’s answer is not lost');
      assert.equal(r.json.outcome, 'answered');
      assert.equal(r.json.response?.status, 200);
      assert.ok(noCvv(r.json.response?.body ?? ''), 'the answer is still scrubbed');
      assert.deepEqual(r.json.cvv_slot, { id: slot, destroyed: false });

      const audit = await t.adminSql<{ action: string; outcome: string; reason: string | null }[]>`
        select action, outcome, reason, details from audit.records
        where resource_id = ${slot} and action <> 'cvv.read' order by seq`;
      assert.deepEqual(
        [...audit],
        [
          { action: 'cvv.create', outcome: 'success', reason: null, details: {} },
          { action: 'cvv.use', outcome: 'success', reason: null, details: { token } },
          {
            action: 'cvv.destroy',
            outcome: 'failure',
            reason: 'volatile_store_unavailable',
            details: { token, outcome: 'answered' },
          },
        ],
      );

      const logs = path.resolve('test-output', 'logs');
      const mine = (await readdir(logs)).filter((f) => f.startsWith(`forward-${backend}-${process.pid}-`));
      const lines = (await Promise.all(mine.map((f) => readFile(path.join(logs, f), 'utf8'))))
        .join('')
        .split('\n')
        .filter((line) => line.includes(slot) && line.includes('not destroyed'));
      assert.equal(lines.length, 1, 'one error logged');
      const logged = JSON.parse(lines[0] as string) as { level: string; error: string; cvv_slot: string };
      assert.equal(logged.level, 'error');
      assert.equal(logged.error, 'volatile_store_unavailable');
      assert.ok(!lines[0]?.includes('sentinel-detail'), 'an error code, not the store’s message');
      assert.ok(
        !lines[0]?.includes(testCards.visa) && !lines[0]?.includes(`"${testCvvs.three}"`),
        'no card data',
      );

      // The store still holds it (with its TTL as the backstop), but its authorization is over: it is
      // refused, and never reaches a processor again.
      const view = await t.request<{ uses_remaining: number; expires_at: string }>(
        'GET',
        `${t.vaultUrl}/v1/cvv-slots/${slot}`,
      );
      assert.equal(view.status, 200);
      assert.ok(Date.parse(view.json.expires_at) > Date.now(), 'it has a TTL');
      const sent = processor.received.length;
      const reuse = await call(token, slot, '/p/ok');
      assert.equal(reuse.status, 404, reuse.text);
      assert.equal(reuse.json.code, 'cvv_slot_not_found');
      assert.equal(processor.received.length, sent, 'the CVV did not go out again');
      // The store is back: the deletion tried again a second later removes it, on record.
      let gone = false;
      for (let i = 0; i < 50 && !gone; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        gone = (await t.request('GET', `${t.vaultUrl}/v1/cvv-slots/${slot}`)).status === 404;
      }
      assert.ok(gone, 'deleted by the retry');
      let destroyed: { outcome: string; details: Record<string, unknown> }[] = [];
      for (let i = 0; i < 20 && destroyed.length === 0; i++) {
        destroyed = await t.adminSql<{ outcome: string; details: Record<string, unknown> }[]>`
          select outcome, details from audit.records
          where resource_id = ${slot} and action = 'cvv.destroy' and outcome = 'success'`;
        if (destroyed.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.deepEqual(
        destroyed.map((r) => [r.outcome, r.details]),
        [['success', { token, outcome: 'answered', retried: 1 }]],
      );
    });

    test('settling a CVV slot destroys it and is audited', async () => {
      const { slot } = await tokenize();
      const r = await t.request('POST', `${t.vaultUrl}/v1/cvv-slots/${slot}/settle`, {
        key: null,
        body: { outcome: 'approved' },
        headers: { 'cardhold-merchant': t.merchantId },
        dispatcher: apiAgent,
      });
      assert.equal(r.status, 204);
      assert.equal(await slotExists(slot), false);
    });
  });
}

test('the card number the vault filled in is scrubbed however the processor wrote it back', () => {
  const pan = testCards.visa;
  const grouped = (sep: string) => pan.replace(/(\d{4})(?=\d)/g, `$1${sep}`);
  const shapes = [
    grouped('.'),
    grouped('  '),
    grouped('\u00a0'),
    grouped('/'),
    grouped('","'),
    Buffer.from(pan).toString('hex'),
    Buffer.from(`{"number":"${pan}","cvc":"${testCvvs.three}"}`).toString('base64'),
    Buffer.from(`x{"number":"${pan}"}`).toString('base64'),
    Buffer.from(`xy{"number":"${pan}"}`).toString('base64'),
  ];
  for (const shape of shapes) {
    const out = scrub(`{"echo":"${shape}","amount":17390}`, { cvv: testCvvs.three, pan });
    assert.ok(out.includes(panRedaction), 'redacted');
    assert.ok(out.includes('17390'), 'the rest stays');
    // Not one run of the card number's middle digits, nor its encodings, survives.
    const left = out.replace(/[^0-9]/g, '');
    assert.ok(!left.includes(pan.slice(2, 14)), 'no run of the middle digits');
    for (const skew of ['', 'x', 'xy']) {
      const middle = Buffer.from(`${skew}${pan}`).toString('base64').slice(4, 12);
      assert.ok(!out.includes(middle), 'no base64 of the middle digits');
    }
  }
});

test('the known CVV is left inside longer numbers and words, where it is not a value of its own', () => {
  const cvv = testCvvs.three;
  const text = `{"amount":1${cvv}0,"ref":"txn_${cvv}","id":"${cvv}x","v":"1.${cvv}"}`;
  assert.ok(scrub(text, { cvv }) === text, 'unchanged');
});

// Not a speed target: a guard against catastrophic backtracking. The answer is an untrusted processor's,
// up to 1 MiB, and the vault's one thread scrubs it. Linear patterns take tens of milliseconds here; the
// unbounded CDATA pattern this replaced took about 5 seconds on the second input.
test('scrubbing a hostile 1 MiB answer never rescans it from each of many starts', () => {
  const pieces = [
    '<cvc><![CDATA[',
    'cvc=cvc=',
    'cvc: cvc: ',
    '"cvc":',
    '"cvc":"',
    '<cvc a="',
    '\\\\',
    "cvc='",
    '4',
  ];
  for (const piece of pieces) {
    const size = 1024 * 1024;
    const text = piece.repeat(Math.ceil(size / piece.length)).slice(0, size);
    const started = performance.now();
    scrub(text, { cvv: testCvvs.three, pan: testCards.visa });
    const ms = performance.now() - started;
    assert.ok(ms < 1500, `${JSON.stringify(piece)}: ${ms.toFixed(0)} ms`);
  }
});
