import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/**
 * The CA bundle that client certificates must chain to, as it is now. TLS checks a client's certificate
 * once, at the handshake, against the bundle of that moment; services keep their connections open for
 * hours. When the bundle is reloaded (a CA removed after a compromise) or a certificate expires, a
 * connection made before must not keep the trust it had: `verifies` checks the peer's chain again
 * against the current bundle and the current time, with node:crypto's X.509 signature checks.
 */
export class ClientTrust {
  #cas: readonly X509Certificate[];
  #fingerprints: string;
  #epoch = 0;

  constructor(caPem: Buffer | string) {
    this.#cas = parseBundle(caPem);
    this.#fingerprints = fingerprintsOf(this.#cas);
  }

  /** Bumped each time the bundle changes; a connection checked under an older epoch is checked again. */
  get epoch(): number {
    return this.#epoch;
  }

  /** A reloaded bundle; the same certificates again change nothing. */
  update(caPem: Buffer | string): void {
    const cas = parseBundle(caPem);
    const fingerprints = fingerprintsOf(cas);
    if (fingerprints === this.#fingerprints) return;
    this.#cas = cas;
    this.#fingerprints = fingerprints;
    this.#epoch++;
  }

  /**
   * Whether the socket's peer certificate leads, signature by signature through the intermediates it
   * sent, to a CA of the current bundle, with every certificate on the way valid at `now`.
   */
  verifies(socket: TLSSocket, now: Date = new Date()): boolean {
    if (typeof socket.getPeerCertificate !== 'function') return false;
    let node: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
    if (!node?.raw) return false;
    let certificate = new X509Certificate(node.raw);
    for (let depth = 0; depth < MAX_CHAIN; depth++) {
      if (!validAt(certificate, now)) return false;
      const anchor = this.#cas.find((ca) => certificate.checkIssued(ca) && certificate.verify(ca.publicKey));
      if (anchor) return validAt(anchor, now);
      // Not issued by a trusted CA directly: the next certificate the peer sent must have signed it.
      const next: DetailedPeerCertificate | undefined = node.issuerCertificate;
      if (!next?.raw || next === node) return false;
      const issuer = new X509Certificate(next.raw);
      if (!certificate.checkIssued(issuer) || !certificate.verify(issuer.publicKey)) return false;
      node = next;
      certificate = issuer;
    }
    return false;
  }
}

/** Leaf, intermediates, root: deeper chains are not ours. */
const MAX_CHAIN = 5;

function validAt(certificate: X509Certificate, now: Date): boolean {
  const time = now.getTime();
  return Date.parse(certificate.validFrom) <= time && time <= Date.parse(certificate.validTo);
}

function parseBundle(pem: Buffer | string): X509Certificate[] {
  const blocks = String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

function fingerprintsOf(cas: readonly X509Certificate[]): string {
  return cas
    .map((ca) => ca.fingerprint256)
    .sort()
    .join(',');
}
