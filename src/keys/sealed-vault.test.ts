import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { testCards } from '../../test/fixtures/cards.ts';
import { backends, futureYear, startTestPlatform } from '../../test/harness.ts';
import { type ControlAnswer, findControlSockets, sendControl } from './control-socket.ts';
import { defaultSealedKeyFile, initSealedKey } from './local-sealed-key-provider.ts';

const card = { pan: testCards.visa, exp_month: 12, exp_year: futureYear };

async function controlSocket(dataDir: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const [socket] = await findControlSockets(dataDir);
    if (socket) return socket;
    await sleep(100);
  }
  throw new Error('no control socket appeared');
}

for (const backend of backends()) {
  describe(`sealed vault (${backend})`, () => {
    test('starts sealed, unseals at exactly the threshold of distinct custodians, serves nothing while sealed, seals in an emergency', async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'cardhold-sealed-'));
      const { shares } = await initSealedKey({
        file: defaultSealedKeyFile(dataDir),
        shares: 5,
        threshold: 3,
        environment: 'development',
      });
      const [s0, s1, s2, s3, s4] = shares as [string, string, string, string, string];
      // The platform waits for the unseal before it finishes starting (the api needs the keys).
      const starting = startTestPlatform(backend, 'sealed-vault', {
        dataDir,
        env: { CARDHOLD_KEY_PROVIDER: 'local-sealed' },
      });
      const socket = await controlSocket(dataDir);
      const send = (user: string, op: 'unseal' | 'seal' | 'status', share?: string) =>
        sendControl(socket, { op, user, ...(share ? { share } : {}) });
      const statusOf = (answer: ControlAnswer) => {
        assert.ok(answer.ok, JSON.stringify(answer));
        return answer.status as { sealed: boolean; submitted: number; threshold: number };
      };
      const refusal = (answer: ControlAnswer) => (answer.ok ? 'accepted' : answer.code);

      assert.deepEqual(statusOf(await send('alice', 'status')), {
        ...statusOf(await send('alice', 'status')),
        sealed: true,
        submitted: 0,
      });
      assert.equal(statusOf(await send('alice', 'unseal', s0)).submitted, 1);
      assert.equal(refusal(await send('bob', 'unseal', s0)), 'key_share_duplicate', 'the same share again');
      assert.equal(
        refusal(await send('alice', 'unseal', s1)),
        'key_share_duplicate',
        'one custodian, two shares',
      );
      const corrupted = s1.replace(/\.([A-Za-z0-9_-])/, (_m, c: string) => `.${c === 'A' ? 'B' : 'A'}`);
      assert.equal(refusal(await send('bob', 'unseal', corrupted)), 'key_share_invalid');
      assert.deepEqual(
        [statusOf(await send('bob', 'unseal', s1)).sealed, statusOf(await send('bob', 'status')).submitted],
        [true, 2],
        'two of three leave it sealed',
      );
      assert.equal(statusOf(await send('carol', 'unseal', s2)).sealed, false);

      const t = await starting;
      try {
        assert.equal((await t.request('GET', `${t.vaultUrl}/readyz`, { key: null })).status, 200);
        const created = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
          body: card,
        });
        assert.equal(created.status, 201);
        const tokenId = created.json.token.id;

        // Emergency seal from the host: every card-data route answers 503, readiness fails.
        assert.equal(statusOf(await send('dave', 'seal')).sealed, true);
        const ready = await t.request<{ checks: Record<string, string> }>('GET', `${t.vaultUrl}/readyz`, {
          key: null,
        });
        assert.equal(ready.status, 503);
        assert.equal(ready.json.checks['key_provider'], 'failing');
        for (const [method, url, body] of [
          ['POST', '/v1/tokens', card],
          ['GET', `/v1/tokens/${tokenId}`, undefined],
          ['GET', '/v1/tokens?last4=4242', undefined],
          ['DELETE', `/v1/tokens/${tokenId}`, undefined],
        ] as const) {
          const answer = await t.request<{ code: string }>(method, `${t.vaultUrl}${url}`, { body });
          assert.equal(answer.status, 503, `${method} ${url}`);
          assert.equal(answer.json.code, 'key_provider_sealed');
        }
        // A merchant key is no custodian.
        const notCustodian = await t.request('POST', `${t.vaultUrl}/v1/keys/unseal`, { body: { share: s3 } });
        assert.equal(notCustodian.status, 403);

        // Unseal again with another three: two are not enough, the third restores service.
        statusOf(await send('erin', 'unseal', s3));
        statusOf(await send('frank', 'unseal', s4));
        assert.equal((await t.request('GET', `${t.vaultUrl}/v1/tokens/${tokenId}`)).status, 503);
        assert.equal(statusOf(await send('grace', 'unseal', s0)).sealed, false);
        assert.equal((await t.request('GET', `${t.vaultUrl}/readyz`, { key: null })).status, 200);
        assert.equal((await t.request('GET', `${t.vaultUrl}/v1/tokens/${tokenId}`)).status, 200);
        // The key-encrypting keys were dropped on seal: this unwraps them again under the unsealed key.
        assert.equal((await t.request('POST', `${t.vaultUrl}/v1/tokens`, { body: card })).status, 201);

        const records = await t.adminSql<
          { action: string; actor_id: string; outcome: string; reason: string | null; details: unknown }[]
        >`
          select action, actor_id, outcome, reason, details from audit.records
          where action in ('key.unseal_share', 'key.unsealed', 'key.sealed') order by seq`;
        const summary = records.map((r) => `${r.action} ${r.actor_id} ${r.outcome} ${r.reason ?? ''}`.trim());
        assert.deepEqual(summary, [
          'key.unseal_share os:alice success',
          'key.unseal_share os:bob failure key_share_duplicate',
          'key.unseal_share os:alice failure key_share_duplicate',
          'key.unseal_share os:bob failure key_share_invalid',
          'key.unseal_share os:bob success',
          'key.unseal_share os:carol success',
          'key.unsealed os:carol success',
          'key.sealed os:dave success',
          'key.unseal_share os:erin success',
          'key.unseal_share os:frank success',
          'key.unseal_share os:grace success',
          'key.unsealed os:grace success',
        ]);
        const written = JSON.stringify(records);
        for (const share of shares)
          assert.ok(!written.includes(share.split('.')[3] as string), 'no share in the trail');
      } finally {
        await t.close();
      }
    });
  });
}
