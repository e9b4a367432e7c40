// tsyringe (used by @peculiar/x509) needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;
const CA_LIFETIME_DAYS = 3 * 365;
const LEAF_LIFETIME_DAYS = 90;
const RENEW_BEFORE_DAYS = 30;

export type ServiceRole = 'vault' | 'api' | 'acquirer';
export const serviceRoles: readonly ServiceRole[] = ['vault', 'api', 'acquirer'];

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

export interface LocalCa {
  dir: string;
  caFile: string;
  caPem: string;
  certificate(role: ServiceRole): Promise<IssuedCertificate>;
}

/**
 * A development certificate authority under <data dir>/tls, created on first start: an ECDSA P-256 root
 * and one leaf per role with SANs for localhost, the loopback addresses, the role's service names and
 * its SPIFFE-style identity (spiffe://cardhold/<role>) for the mTLS checks that build on it. Leaves are
 * reissued when they come within 30 days of expiry. Production supplies its own certificates.
 */
export async function openLocalCa(dataDir: string, now = new Date()): Promise<LocalCa> {
  const dir = path.join(dataDir, 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const caFile = path.join(dir, 'ca.crt');
  const caKeyFile = path.join(dir, 'ca.key');

  let caPem = await readFile(caFile, 'utf8').catch(() => undefined);
  let caKeyPem = await readFile(caKeyFile, 'utf8').catch(() => undefined);
  if (!caPem || !caKeyPem || expiresWithin(caPem, now, RENEW_BEFORE_DAYS)) {
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'CN=cardhold local development CA,O=cardhold (development only)',
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + CA_LIFETIME_DAYS * DAY),
      signingAlgorithm: ALG,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    caPem = ca.toString('pem');
    caKeyPem = await exportKey(keys.privateKey);
    await writeFile(caKeyFile, caKeyPem, { mode: 0o600 });
    await writeFile(caFile, caPem, { mode: 0o644 });
  }
  const caCert = new x509.X509Certificate(caPem);
  const caKey = await importKey(caKeyPem);
  const issuedCaPem = caPem;

  return {
    dir,
    caFile,
    caPem: issuedCaPem,
    async certificate(role: ServiceRole): Promise<IssuedCertificate> {
      const certFile = path.join(dir, `${role}.crt`);
      const keyFile = path.join(dir, `${role}.key`);
      const certPem = await readFile(certFile, 'utf8').catch(() => undefined);
      const keyPem = await readFile(keyFile, 'utf8').catch(() => undefined);
      if (
        certPem &&
        keyPem &&
        !expiresWithin(certPem, now, RENEW_BEFORE_DAYS) &&
        issuedBy(certPem, issuedCaPem)
      ) {
        return { certPem, keyPem };
      }
      const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=cardhold-${role},O=cardhold (development only)`,
        issuer: caCert.subject,
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(now.getTime() + LEAF_LIFETIME_DAYS * DAY),
        signingAlgorithm: ALG,
        publicKey: keys.publicKey,
        signingKey: caKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([
            x509.ExtendedKeyUsage.serverAuth,
            x509.ExtendedKeyUsage.clientAuth,
          ]),
          new x509.SubjectAlternativeNameExtension([
            { type: 'dns', value: 'localhost' },
            { type: 'dns', value: role },
            { type: 'dns', value: `cardhold-${role}` },
            { type: 'ip', value: '127.0.0.1' },
            { type: 'ip', value: '::1' },
            { type: 'url', value: `spiffe://cardhold/${role}` },
          ]),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(caCert),
        ],
      });
      const issued = { certPem: leaf.toString('pem'), keyPem: await exportKey(keys.privateKey) };
      await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
      await writeFile(certFile, issued.certPem, { mode: 0o644 });
      return issued;
    },
  };
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f; // positive INTEGER
  return bytes.toString('hex');
}

function expiresWithin(pem: string, now: Date, days: number): boolean {
  try {
    return new X509Certificate(pem).validToDate.getTime() - now.getTime() < days * DAY;
  } catch {
    return true;
  }
}

function issuedBy(leafPem: string, caPem: string): boolean {
  try {
    return new X509Certificate(leafPem).verify(new X509Certificate(caPem).publicKey);
  } catch {
    return false;
  }
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('the local CA key file is not PEM');
  return webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
}
