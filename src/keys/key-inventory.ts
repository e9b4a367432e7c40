import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Sql } from 'postgres';
import type { KeyProvider } from './key-provider.ts';
import type { Cryptoperiods } from './key-status.ts';
import { masterVersionRows } from './master-rotation.ts';

const DAY_MS = 24 * 3600 * 1000;

/**
 * One key or certificate (PCI DSS 3.6.1.1, 4.2.1.1). `id` is unique in the inventory: `kek:<merchant>/
 * <purpose>/v<n>`, `audit_hash:v<n>`, `audit_signing:v<n>`, `session:<kid>`, `totp:v<n>`,
 * `master:<provider>/<version>`, `certificate:<file>`.
 */
export interface InventoryItem {
  id: string;
  kind: 'key' | 'certificate';
  purpose: string;
  merchant_id: string | null;
  version: string;
  algorithm: string;
  strength_bits: number;
  provider: string;
  environment: string;
  created_at: string | null;
  expires_at: string | null;
  state: string;
  /** Certificates: subject and subject alternative names. */
  subject?: string;
  san?: string;
}

/**
 * What a key provider may say about its master key for the inventory; providers that do not implement
 * `describe` are listed with what the interface tells (name, environment).
 */
export interface ProviderDescription {
  algorithm: string;
  strength_bits: number;
  created_at?: string | null;
}

const addDays = (at: Date, days: number) => new Date(at.getTime() + days * DAY_MS).toISOString();

/** Every key in the hierarchy and every certificate the roles present, newest state from the database. */
export async function keyInventory(options: {
  sql: Sql;
  provider: KeyProvider & { describe?: () => ProviderDescription };
  periods: Cryptoperiods;
  /** CARDHOLD_TLS_DIR, or the local CA's directory in development. */
  certificateDir: string | undefined;
  /**
   * The api's operator session and TOTP keys (default true). The vault's database role may not read
   * their rows (migration 005), so the vault's inventory route leaves them to the api and the CLI.
   */
  identityKeys?: boolean;
}): Promise<InventoryItem[]> {
  const { sql, provider, periods } = options;
  const described = provider.describe?.();
  // Every master key version: the provider's, with what rotations recorded (retired ones stay listed).
  const items: InventoryItem[] = (await masterVersionRows(sql, provider)).map((m) => ({
    id: `master:${provider.name}/${m.version}`,
    kind: 'key',
    purpose: 'master (root of trust)',
    merchant_id: null,
    version: m.version,
    algorithm: described?.algorithm ?? 'AES-256-GCM',
    strength_bits: described?.strength_bits ?? 256,
    provider: provider.name,
    environment: m.environment,
    created_at: m.created_at?.toISOString() ?? described?.created_at ?? null,
    expires_at: m.retired_at?.toISOString() ?? null,
    state: m.state,
  }));

  const keks = await sql<
    {
      merchant_id: string;
      purpose: 'pan' | 'cvv' | 'fingerprint';
      version: number;
      provider: string;
      environment: string;
      state: string;
      created_at: Date;
      retired_at: Date | null;
      compromised_at: Date | null;
    }[]
  >`
    select merchant_id, purpose, version, provider, environment, state, created_at, retired_at, compromised_at
    from vault.key_encryption_keys order by merchant_id, purpose, version`;
  for (const k of keks) {
    items.push({
      id: `kek:${k.merchant_id}/${k.purpose}/v${k.version}`,
      kind: 'key',
      purpose: k.purpose,
      merchant_id: k.merchant_id,
      version: String(k.version),
      algorithm: k.purpose === 'fingerprint' ? 'HMAC-SHA-256' : 'AES-256-GCM (key wrap)',
      strength_bits: 256,
      provider: k.provider,
      environment: k.environment,
      created_at: k.created_at.toISOString(),
      expires_at: k.retired_at?.toISOString() ?? addDays(k.created_at, periods[k.purpose]),
      state: k.compromised_at ? `${k.state} (compromised)` : k.state,
    });
  }

  type SystemKey = {
    family: string;
    version: string;
    seq: number;
    provider: string;
    environment: string;
    created_at: Date;
    retired: boolean;
  };
  const systemKeys = await sql<SystemKey[]>`
    select 'audit_hash' as family, version::text, version as seq, provider, environment, created_at, false as retired
      from audit.hash_keys
    union all
    select 'audit_signing', version::text, version, provider, environment, created_at, false from audit.signing_keys
    order by 1, 3`;
  if (options.identityKeys !== false) {
    systemKeys.push(
      ...(await sql<SystemKey[]>`
    select 'session' as family, kid as version, seq, provider, environment, created_at, retired_at is not null as retired
      from identity.session_keys
    union all
    select 'totp', version::text, version, provider, environment, created_at, false from identity.operator_totp_keys
    order by 1, 3`),
    );
  }
  const newest = new Map<string, number>();
  for (const k of systemKeys) newest.set(k.family, Math.max(newest.get(k.family) ?? 0, k.seq));
  const families: Record<string, { purpose: string; algorithm: string; older: string; days?: number }> = {
    audit_hash: {
      purpose: 'audit keyed hashes',
      algorithm: 'HMAC-SHA-256',
      older: 'superseded',
      days: periods.audit,
    },
    audit_signing: {
      purpose: 'audit checkpoint signing',
      algorithm: 'Ed25519',
      older: 'verify_only',
      days: periods.audit,
    },
    session: { purpose: 'operator session signing', algorithm: 'Ed25519', older: 'verify_only' },
    totp: { purpose: 'operator TOTP secret encryption', algorithm: 'AES-256-GCM', older: 'decrypt_only' },
  };
  for (const k of systemKeys) {
    const family = families[k.family] as (typeof families)[string];
    const version = k.family === 'session' ? k.version : `v${k.version}`;
    items.push({
      id: `${k.family}:${version}`,
      kind: 'key',
      purpose: family.purpose,
      merchant_id: null,
      version: k.version,
      algorithm: family.algorithm,
      strength_bits: 256,
      provider: k.provider,
      environment: k.environment,
      created_at: k.created_at.toISOString(),
      expires_at: family.days ? addDays(k.created_at, family.days) : null,
      state: k.retired ? 'retired' : k.seq === newest.get(k.family) ? 'active' : family.older,
    });
  }

  if (options.certificateDir)
    items.push(...(await certificates(options.certificateDir, provider.environment)));
  return items;
}

/** Every `*.crt` in the directory: the CA and each role's certificate. */
async function certificates(dir: string, environment: string): Promise<InventoryItem[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.crt')).sort();
  const items: InventoryItem[] = [];
  for (const file of files) {
    const cert = new X509Certificate(await readFile(path.join(dir, file)));
    const details = cert.publicKey.asymmetricKeyDetails;
    const type = cert.publicKey.asymmetricKeyType ?? 'unknown';
    const strength =
      details?.modulusLength ??
      (details?.namedCurve ? curveBits(details.namedCurve) : type === 'ed25519' ? 256 : 0);
    items.push({
      id: `certificate:${file}`,
      kind: 'certificate',
      purpose: cert.ca ? 'TLS certificate authority' : `TLS ${path.basename(file, '.crt')}`,
      merchant_id: null,
      version: cert.serialNumber,
      algorithm: details?.namedCurve ? `${type.toUpperCase()} ${details.namedCurve}` : type.toUpperCase(),
      strength_bits: strength,
      provider: 'file',
      environment,
      created_at: new Date(cert.validFrom).toISOString(),
      expires_at: new Date(cert.validTo).toISOString(),
      state: new Date(cert.validTo).getTime() < Date.now() ? 'expired' : 'active',
      subject: cert.subject.replaceAll('\n', ', '),
      san: cert.subjectAltName ?? '',
    });
  }
  return items;
}

function curveBits(curve: string): number {
  const bits = /(\d{3})/.exec(curve)?.[1];
  return bits ? Number(bits) : 0;
}
