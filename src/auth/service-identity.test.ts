import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import { Agent } from 'undici';
import { testCards } from '../../test/fixtures/cards.ts';
import { futureYear, startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { type LocalCa, openLocalCa } from '../keys/local-ca.ts';

/** A TLS directory as production has one (CARDHOLD_TLS_DIR), filled from a CA of the test's own. */
async function tlsDirFrom(ca: LocalCa, dir: string): Promise<void> {
  await writeFile(path.join(dir, 'ca.crt'), ca.caPem);
  for (const role of ['vault', 'api', 'acquirer'] as const) {
    const issued = await ca.certificate(role);
    await writeFile(path.join(dir, `${role}.crt`), issued.certPem);
    await writeFile(path.join(dir, `${role}.key`), issued.keyPem, { mode: 0o600 });
  }
}

function peerSerial(url: string, ca: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

describe('service identities: mTLS with the identity in the URI SAN (embedded)', () => {
  let t: TestPlatform;
  let ca: LocalCa;
  let rogue: LocalCa;
  const dirs: string[] = [];
  const agentFor = async (issuer: LocalCa, role: 'api' | 'vault') => {
    const issued = await issuer.certificate(role);
    return new Agent({ connect: { ca: ca.caPem, cert: issued.certPem, key: issued.keyPem } });
  };

  before(async () => {
    const [caDir, rogueDir, tlsDir] = await Promise.all(
      [1, 2, 3].map(() => mkdtemp(path.join(tmpdir(), 'cardhold-mtls-'))),
    );
    dirs.push(caDir as string, rogueDir as string, tlsDir as string);
    ca = await openLocalCa(caDir as string);
    rogue = await openLocalCa(rogueDir as string);
    await tlsDirFrom(ca, tlsDir as string);
    t = await startTestPlatform('embedded', 'mtls', {
      env: { CARDHOLD_TLS_DIR: tlsDir as string, CARDHOLD_TLS_RELOAD_SECONDS: '1' },
    });
  });
  after(async () => {
    await t?.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  test('the api service reads through its certificate, only what service-api may, for the merchant it names', async () => {
    const created = await t.request<{ token: { id: string } }>('POST', `${t.vaultUrl}/v1/tokens`, {
      body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
    });
    const api = await agentFor(ca, 'api');
    const asMerchant = { 'cardhold-merchant': t.merchantId };
    const read = await t.request('GET', `${t.vaultUrl}/v1/tokens/${created.json.token.id}`, {
      key: null,
      headers: asMerchant,
      dispatcher: api,
    });
    assert.equal(read.status, 200);
    const write = await t.request('POST', `${t.vaultUrl}/v1/tokens`, {
      key: null,
      headers: asMerchant,
      dispatcher: api,
      body: { pan: testCards.visa, exp_month: 12, exp_year: futureYear },
    });
    assert.equal(write.status, 403, 'service-api does not hold tokens:create');
    const records = await t.adminSql<{ actor_type: string; actor_id: string }[]>`
      select actor_type, actor_id from audit.records where action = 'token.read' and resource_id = ${created.json.token.id}`;
    assert.deepEqual(
      records.map((r) => ({ ...r })),
      [{ actor_type: 'service', actor_id: 'spiffe://cardhold/api' }],
    );
    await api.close();
  });

  test('no certificate, a certificate from another CA, or another service identity: refused and recorded', async () => {
    const url = `${t.vaultUrl}/v1/tokens?limit=1`;
    const asMerchant = { 'cardhold-merchant': t.merchantId };
    assert.equal((await t.request('GET', url, { key: null, headers: asMerchant })).status, 401);
    const forged = await agentFor(rogue, 'api');
    const fromRogue = await t.request<{ code: string }>('GET', url, {
      key: null,
      headers: asMerchant,
      dispatcher: forged,
    });
    assert.equal(fromRogue.status, 401);
    assert.equal(fromRogue.json.code, 'unauthenticated');
    const vaultItself = await agentFor(ca, 'vault');
    assert.equal(
      (await t.request('GET', url, { key: null, headers: asMerchant, dispatcher: vaultItself })).status,
      401,
    );
    const refused = await t.adminSql<{ actor_id: string }[]>`
      select actor_id from audit.records where action = 'auth.failure' and reason = 'bad_client_certificate'`;
    assert.ok(refused.length >= 2, 'both certificates are recorded as bad client certificates');
    assert.ok(
      refused.every((r) => /^hk1_/.test(r.actor_id)),
      'a certificate appears only as a keyed hash',
    );
    await forged.close();
    await vaultItself.close();
  });

  test('a rotated server certificate is picked up without a restart', async () => {
    const caPem = ca.caPem;
    const before = await peerSerial(t.vaultUrl, caPem);
    // Re-issue the vault's certificate: the CA issues a new one once the old files are gone.
    const caDir = dirs[0] as string;
    await unlink(path.join(caDir, 'tls', 'vault.crt')).catch(() => undefined);
    await unlink(path.join(caDir, 'tls', 'vault.key')).catch(() => undefined);
    const fresh = await ca.certificate('vault');
    const tlsDir = dirs[2] as string;
    await writeFile(path.join(tlsDir, 'vault.key'), fresh.keyPem, { mode: 0o600 });
    await writeFile(path.join(tlsDir, 'vault.crt'), fresh.certPem);
    let after = before;
    for (let i = 0; i < 40 && after === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      after = await peerSerial(t.vaultUrl, caPem);
    }
    assert.notEqual(after, before, 'new connections see the new certificate');
    assert.equal((await t.request('GET', `${t.vaultUrl}/healthz`)).status, 200);
  });

  test('a client cannot renegotiate TLS 1.2 to present another certificate on a checked connection', async () => {
    const issued = await ca.certificate('api');
    const { hostname, port } = new URL(t.vaultUrl);
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect(
        {
          host: hostname,
          port: Number(port),
          ca: ca.caPem,
          cert: issued.certPem,
          key: issued.keyPem,
          servername: 'localhost',
          maxVersion: 'TLSv1.2',
        },
        () => {
          const renegotiated = socket.renegotiate({ rejectUnauthorized: true }, (error) =>
            resolve(error ? 'refused' : 'renegotiated'),
          );
          if (!renegotiated) resolve('refused');
        },
      );
      socket.on('error', () => resolve('refused'));
      socket.on('close', () => resolve('refused'));
      setTimeout(() => resolve('no answer'), 10_000).unref();
    });
    assert.equal(outcome, 'refused');
  });

  // Last: it takes the CA out of the bundle.
  test('a CA taken out of the bundle is no longer trusted on connections made before, which are closed', async () => {
    const url = `${t.vaultUrl}/v1/tokens?limit=1`;
    const asMerchant = { 'cardhold-merchant': t.merchantId };
    const issued = await ca.certificate('api');
    // One long-lived connection, checked and cached under the old bundle.
    const pooled = new Agent({
      connect: { ca: ca.caPem, cert: issued.certPem, key: issued.keyPem },
      keepAliveTimeout: 60_000,
      connections: 1,
    });
    const call = (dispatcher: Agent) => t.request('GET', url, { key: null, headers: asMerchant, dispatcher });
    assert.equal((await call(pooled)).status, 200);
    // The bundle now holds only the other CA: new connections from the old CA's certificates fail their
    // handshake check, and the old connection must not keep the trust it had.
    const tlsDir = dirs[2] as string;
    await writeFile(path.join(tlsDir, 'ca.crt'), rogue.caPem);
    const newcomer = await agentFor(rogue, 'api');
    let reloaded = false;
    for (let i = 0; i < 80 && !reloaded; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      reloaded = (await call(newcomer)).status === 200;
    }
    const last = await call(newcomer);
    assert.ok(reloaded, `the new bundle is in force: its CA is accepted (${last.status} ${last.text})`);
    const stale = await call(pooled);
    assert.equal(stale.status, 401, stale.text);
    assert.equal(stale.headers.get('connection'), 'close', 'the stale connection is closed');
    await pooled.close();
    await newcomer.close();
  });
});
