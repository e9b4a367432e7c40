import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { type LocalCa, openLocalCa } from '../keys/local-ca.ts';
import { ClientTrust } from './client-trust.ts';

/**
 * The chain check behind long-lived connections: what a TLS socket reports of its peer (the leaf, and
 * the chain behind it as the handshake built it), checked against the bundle as it is now.
 */

let ours: LocalCa;
let other: LocalCa;
const dirs: string[] = [];
before(async () => {
  for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(path.join(tmpdir(), 'cardhold-trust-')));
  ours = await openLocalCa(dirs[0] as string);
  other = await openLocalCa(dirs[1] as string);
});
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A socket whose peer sent `leafPem`, chained (as OpenSSL reports it) to `rootPem`, self-issued. */
function socketWith(leafPem: string, rootPem: string): TLSSocket {
  const root = { raw: new X509Certificate(rootPem).raw } as DetailedPeerCertificate;
  root.issuerCertificate = root;
  const leaf = { raw: new X509Certificate(leafPem).raw, issuerCertificate: root } as DetailedPeerCertificate;
  return { getPeerCertificate: () => leaf } as unknown as TLSSocket;
}

test('a certificate is trusted while its CA is in the bundle and it is in its validity period', async () => {
  const issued = await ours.certificate('api');
  const socket = socketWith(issued.certPem, ours.caPem);
  const trust = new ClientTrust(ours.caPem);
  assert.equal(trust.verifies(socket), true);

  // A bundle of two CAs, the same again, then without ours.
  trust.update(`${other.caPem}\n${ours.caPem}`);
  assert.equal(trust.epoch, 1);
  assert.equal(trust.verifies(socket), true, 'either CA of the bundle');
  trust.update(`${ours.caPem}\n${other.caPem}`);
  assert.equal(trust.epoch, 1, 'the same certificates in another order change nothing');
  trust.update(other.caPem);
  assert.equal(trust.epoch, 2);
  assert.equal(
    trust.verifies(socket),
    false,
    'its CA is out of the bundle, though the chain the peer showed still reaches that CA',
  );

  // Expired, or not yet valid.
  const leaf = new X509Certificate(issued.certPem);
  const back = new ClientTrust(ours.caPem);
  assert.equal(back.verifies(socket, new Date(Date.parse(leaf.validTo) + 1000)), false);
  assert.equal(back.verifies(socket, new Date(Date.parse(leaf.validFrom) - 1000)), false);
  // A socket that shows no certificate.
  assert.equal(back.verifies({ getPeerCertificate: () => ({}) } as unknown as TLSSocket), false);
});

test('a certificate signed by another CA under the same name is not trusted', async () => {
  const foreign = await other.certificate('api');
  // The peer claims our CA as its issuer; the signature says otherwise.
  const trust = new ClientTrust(ours.caPem);
  assert.equal(trust.verifies(socketWith(foreign.certPem, ours.caPem)), false);
  assert.equal(trust.verifies(socketWith(foreign.certPem, other.caPem)), false);
});
