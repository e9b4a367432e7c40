import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import type { Sql } from 'postgres';
import type { KeyProvider } from '../keys/key-provider.ts';
import { openSystemKey } from '../keys/system-key.ts';
import { CardholdError } from '../shared/errors.ts';

export interface PublicSigningKey {
  version: number;
  /** Ed25519 public key, SubjectPublicKeyInfo DER. */
  publicKey: KeyObject;
  createdAt: Date;
}

export const hashContext = (version: number, environment: string) =>
  `cardhold/audit-hash/v1|${version}|${environment}`;
export const signingContext = (version: number, environment: string) =>
  `cardhold/audit-signing/v1|${version}|${environment}`;

async function unwrapWith(provider: KeyProvider, wrapped: Buffer, context: string): Promise<Buffer> {
  try {
    return await provider.unwrap(wrapped, context);
  } catch (cause) {
    throw new CardholdError('key_provider_unavailable', { cause });
  }
}

async function wrapWith(provider: KeyProvider, material: Buffer, context: string): Promise<Buffer> {
  try {
    return await provider.wrap(material, context);
  } catch (cause) {
    throw new CardholdError('key_provider_unavailable', { cause });
  }
}

/**
 * The key for keyed hashes in audit records, from the key hierarchy: created wrapped by the key provider
 * on the trail's first start (`created` tells the caller to record the trail's initialization).
 */
export async function openHashKey(
  sql: Sql,
  provider: KeyProvider,
): Promise<{ key: KeyObject; version: number; created: boolean }> {
  return openSystemKey({
    sql,
    provider,
    table: 'audit.hash_keys',
    context: hashContext,
    name: 'audit hash key',
  });
}

/** `hk<version>_` and 128 bits of HMAC-SHA-256: correlatable within a deployment, never reversible. */
export function keyedHash(key: { key: KeyObject; version: number }, value: string): string {
  const mac = createHmac('sha256', key.key).update(value).digest().subarray(0, 16);
  return `hk${key.version}_${mac.toString('base64url')}`;
}

export interface CheckpointSigner {
  version: number;
  sign(statement: Buffer): Buffer;
}

/**
 * The Ed25519 key that signs checkpoints, created on first use: the private half is stored only wrapped
 * by the key provider and lives in this process as a KeyObject.
 */
export async function openCheckpointSigner(
  sql: Sql,
  provider: KeyProvider,
): Promise<{ signer: CheckpointSigner; created: boolean }> {
  const load = () => sql<{ version: number; wrapped_private_key: Buffer; environment: string }[]>`
    select version, wrapped_private_key, environment from audit.signing_keys order by version desc limit 1`;
  let rows = await load();
  let created = false;
  if (rows.length === 0) {
    const pair = generateKeyPairSync('ed25519');
    const der = pair.privateKey.export({ format: 'der', type: 'pkcs8' });
    try {
      const wrapped = await wrapWith(provider, der, signingContext(1, provider.environment));
      const publicDer = pair.publicKey.export({ format: 'der', type: 'spki' });
      const inserted = await sql`
        insert into audit.signing_keys (version, public_key, wrapped_private_key, provider, environment, master_version)
        values (1, ${publicDer}, ${wrapped}, ${provider.name}, ${provider.environment}, ${provider.versionOf(wrapped)})
        on conflict do nothing returning version`;
      created = inserted.length > 0;
    } finally {
      der.fill(0);
    }
    rows = await load();
  }
  const row = rows[0];
  if (!row) throw new CardholdError('key_provider_unavailable', { detail: 'No audit signing key' });
  if (row.environment !== provider.environment) {
    throw new CardholdError('key_provider_unavailable', {
      detail: 'The audit signing key belongs to another key environment',
    });
  }
  const der = await unwrapWith(
    provider,
    row.wrapped_private_key,
    signingContext(row.version, row.environment),
  );
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
  return {
    signer: { version: row.version, sign: (statement) => sign(null, statement, privateKey) },
    created,
  };
}

/** Every checkpoint-signing public key, for verifiers; readable by both runtime roles. */
export async function loadPublicSigningKeys(sql: Sql): Promise<PublicSigningKey[]> {
  const rows = await sql<{ version: number; public_key: Buffer; created_at: Date }[]>`
    select version, public_key, created_at from audit.signing_keys order by version`;
  return rows.map((row) => ({
    version: row.version,
    publicKey: createPublicKey({ key: row.public_key, format: 'der', type: 'spki' }),
    createdAt: row.created_at,
  }));
}
