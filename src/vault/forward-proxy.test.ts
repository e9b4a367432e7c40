import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { Agent } from 'undici';
import { testCards, testCvvs } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { openLocalCa } from '../keys/local-ca.ts';
import { CvvSlots } from './cvv-slots.ts';

interface Received {
  path: string;
  body: string;
  clientIdentity: string | undefined;
}

/**
 * A stand-in processor on loopback, with a certificate from the platform's CA. Its paths choose its
 * behaviour: answer (echoing the card back, so that scrubbing is tested), decline, 503, hang, drop.
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
        received.push({
          path: req.url ?? '',
          body,
          clientIdentity: socket.authorized ? identity : undefined,
        });
        const path = (req.url ?? '').split('?')[0];
        if (path === '/p/hang') return; // never answers
        if (path === '/p/drop') {
          req.socket.destroy();
          return;
        }
        const status = path === '/p/decline' ? 402 : path === '/p/unavailable' ? 503 : 200;
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
          CARDHOLD_FORWARD_TIMEOUT_MS: '400',
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
      // The echo is scrubbed: no card number, no CVV field value, no cookie.
      assert.ok(!r.text.includes(testCards.visa));
      assert.ok(!r.text.includes(`\\"cvc\\":\\"${testCvvs.three}\\"`));
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

    test('a decline (4xx) is a definitive answer: the CVV is destroyed', async () => {
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
