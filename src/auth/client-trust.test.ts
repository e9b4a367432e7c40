// tsyringe (used by @peculiar/x509) needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { webcrypto, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { ClientTrust } from './client-trust.ts';

/**
 * The chain check behind long-lived connections: what a TLS socket reports of its peer (the leaf, and the
 * chain behind it as the handshake built it), checked against the bundle as it is now, the way OpenSSL
 * decides at a handshake.
 */

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

interface Issued {
  pem: string;
  keys: CryptoKeyPair;
  name: string;
}

let serial = 1;
async function issue(
  name: string,
  options: { by?: Issued; ca: boolean; days?: number; startDaysAgo?: number },
): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const common = {
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    notBefore: new Date(now - (options.startDaysAgo ?? 1) * DAY),
    notAfter: new Date(now + (options.days ?? 30) * DAY),
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(options.ca, undefined, true)],
  };
  const certificate = options.by
    ? await x509.X509CertificateGenerator.create({
        ...common,
        subject: `CN=${name}`,
        issuer: `CN=${options.by.name}`,
        publicKey: keys.publicKey,
        signingKey: options.by.keys.privateKey,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: `CN=${name}`, keys });
  return { pem: certificate.toString('pem'), keys, name };
}

/** A socket whose peer sent `chain` (leaf first); the last one issues itself, as OpenSSL reports a root. */
function socketWith(...chain: string[]): TLSSocket {
  const nodes = chain.map((pem) => ({ raw: new X509Certificate(pem).raw }) as DetailedPeerCertificate);
  nodes.forEach((node, i) => {
    node.issuerCertificate = nodes[i + 1] ?? node;
  });
  return { getPeerCertificate: () => nodes[0] } as unknown as TLSSocket;
}

test('a leaf is trusted while its root is in the bundle, until the earliest end of validity on its chain', async () => {
  const root = await issue('root', { ca: true, days: 365 });
  const other = await issue('other root', { ca: true, days: 365 });
  const intermediate = await issue('intermediate', { by: root, ca: true, days: 60 });
  const leaf = await issue('leaf', { by: intermediate, ca: false, days: 90 });
  const socket = socketWith(leaf.pem, intermediate.pem, root.pem);

  const trust = new ClientTrust(root.pem);
  const until = trust.trustedUntil(socket);
  assert.equal(
    until,
    Date.parse(new X509Certificate(intermediate.pem).validTo),
    'the intermediate ends first',
  );
  assert.equal(new ClientTrust(`${root.pem}\n${intermediate.pem}`).trustedUntil(socketWith(leaf.pem)), until);

  trust.update(`${other.pem}\n${root.pem}`);
  assert.equal(trust.epoch, 1);
  assert.equal(trust.trustedUntil(socket), until, 'either root of the bundle');
  trust.update(`${root.pem}\n${other.pem}`);
  assert.equal(trust.epoch, 1, 'the same certificates in another order change nothing');
  // An empty or half-written bundle is refused, not applied as "trust nobody".
  assert.throws(() => trust.update(''), /no certificate/);
  assert.throws(() => trust.update(root.pem.slice(0, 100)), /no certificate/);
  assert.throws(() => new ClientTrust(''), /no certificate/);
  assert.equal(trust.epoch, 1, 'a refused bundle changes nothing');

  // The root taken out: not trusted, though the chain the peer showed still reaches it.
  trust.update(other.pem);
  assert.equal(trust.trustedUntil(socket), undefined);
  // An intermediate left alone in the bundle is no anchor, as at a handshake.
  assert.equal(new ClientTrust(intermediate.pem).trustedUntil(socket), undefined);

  // Past the intermediate's end, or before the leaf's start.
  const later = new Date((until as number) + 1000);
  assert.equal(new ClientTrust(root.pem).trustedUntil(socket, later), undefined);
  const early = new Date(Date.parse(new X509Certificate(leaf.pem).validFrom) - 1000);
  assert.equal(new ClientTrust(root.pem).trustedUntil(socket, early), undefined);
  assert.equal(
    new ClientTrust(root.pem).trustedUntil({ getPeerCertificate: () => ({}) } as never),
    undefined,
  );
  const garbled = { getPeerCertificate: () => ({ raw: Buffer.from('not a certificate') }) } as never;
  assert.equal(new ClientTrust(root.pem).trustedUntil(garbled), undefined, 'unreadable: refused, no throw');
});

test('a certificate that is not a CA issues nothing, and a signature that does not verify is no issuer', async () => {
  const root = await issue('root', { ca: true, days: 365 });
  const notCa = await issue('service', { by: root, ca: false });
  const underNotCa = await issue('forged', { by: notCa, ca: false });
  const trust = new ClientTrust(root.pem);
  assert.notEqual(trust.trustedUntil(socketWith(notCa.pem, root.pem)), undefined);
  assert.equal(trust.trustedUntil(socketWith(underNotCa.pem, notCa.pem, root.pem)), undefined);
  // Nor when the bundle itself holds that certificate.
  assert.equal(
    new ClientTrust(`${root.pem}\n${notCa.pem}`).trustedUntil(socketWith(underNotCa.pem)),
    undefined,
  );

  // A leaf of another root that claims this root's name: its signature says otherwise.
  const impostor = await issue('root', { ca: true, days: 365 });
  const foreign = await issue('leaf', { by: impostor, ca: false });
  assert.equal(trust.trustedUntil(socketWith(foreign.pem, root.pem)), undefined);
  assert.equal(trust.trustedUntil(socketWith(foreign.pem, impostor.pem)), undefined);
});
