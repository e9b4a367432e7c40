import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/**
 * The CA bundle that client certificates must chain to, as it is now. TLS checks a client's certificate
 * once, at the handshake, against the bundle of that moment; services keep their connections open for
 * hours. When the bundle is reloaded (a CA removed after a compromise) or a certificate expires, a
 * connection made before must not keep the trust it had: `trustedUntil` checks the peer's chain again
 * against the current bundle and the current time, with node:crypto's X.509 signature checks.
 */
export class ClientTrust {
  #cas: readonly X509Certificate[];
  #fingerprints: string;
  #fingerprintSet: ReadonlySet<string>;
  #epoch = 0;

  constructor(caPem: Buffer | string) {
    this.#cas = parseBundle(caPem);
    this.#fingerprints = fingerprintsOf(this.#cas);
    this.#fingerprintSet = new Set(this.#cas.map((ca) => ca.fingerprint256));
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
    this.#fingerprintSet = new Set(cas.map((ca) => ca.fingerprint256));
    this.#epoch++;
  }

  /**
   * When the socket's peer certificate stops being trusted (the earliest end of validity on its chain),
   * if it leads now, signature by signature, through CA certificates from the bundle or sent by the peer,
   * to a self-signed root in the current bundle, with every certificate on the way valid at `now`; else
   * undefined. As OpenSSL decides at a handshake: an intermediate in the bundle is not an anchor by
   * itself, and a certificate that is not a CA issues nothing.
   */
  trustedUntil(socket: TLSSocket, now: Date = new Date()): number | undefined {
    try {
      return this.#walk(socket, now);
    } catch {
      // A certificate node:crypto cannot read is not trusted (and never a 500).
      return undefined;
    }
  }

  #walk(socket: TLSSocket, now: Date): number | undefined {
    if (typeof socket.getPeerCertificate !== 'function') return undefined;
    let node: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
    if (!node?.raw) return undefined;
    let certificate = new X509Certificate(node.raw);
    let until = Number.POSITIVE_INFINITY;
    for (let depth = 0; depth < MAX_CHAIN; depth++) {
      if (!validAt(certificate, now)) return undefined;
      until = Math.min(until, Date.parse(certificate.validTo));
      if (signs(certificate, certificate)) {
        return this.#fingerprintSet.has(certificate.fingerprint256) ? until : undefined;
      }
      // Its issuer: from the bundle, else the next certificate the peer sent.
      const next: DetailedPeerCertificate | undefined = node?.issuerCertificate;
      const sent: X509Certificate | undefined =
        next?.raw && next !== node ? new X509Certificate(next.raw) : undefined;
      const issuer: X509Certificate | undefined =
        this.#cas.find((ca) => ca.ca && signs(ca, certificate)) ??
        (sent?.ca && signs(sent, certificate) ? sent : undefined);
      if (!issuer) return undefined;
      node = issuer === sent ? next : undefined;
      certificate = issuer;
    }
    return undefined;
  }
}

/** Whether `issuer` issued and signed `certificate`. */
function signs(issuer: X509Certificate, certificate: X509Certificate): boolean {
  return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
}

/** Leaf, intermediates, root: deeper chains are not ours. */
const MAX_CHAIN = 5;

function validAt(certificate: X509Certificate, now: Date): boolean {
  const time = now.getTime();
  return Date.parse(certificate.validFrom) <= time && time <= Date.parse(certificate.validTo);
}

/** The bundle's certificates; none (an empty file, one caught half-written) is an error, not "trust nobody". */
function parseBundle(pem: Buffer | string): X509Certificate[] {
  const blocks = String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('the CA bundle holds no certificate');
  return blocks.map((block) => new X509Certificate(block));
}

function fingerprintsOf(cas: readonly X509Certificate[]): string {
  return cas
    .map((ca) => ca.fingerprint256)
    .sort()
    .join(',');
}
