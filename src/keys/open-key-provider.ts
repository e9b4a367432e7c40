import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Config, ConfigError } from '../config/config.ts';
import type { Logger } from '../shared/logger.ts';
import { AwsKmsClient } from './aws-kms-client.ts';
import type { KeyProvider } from './key-provider.ts';
import { KmsKeyProvider } from './kms-key-provider.ts';
import { LocalKeyProvider } from './local-key-provider.ts';
import { defaultSealedKeyFile, initSealedKey, LocalSealedKeyProvider } from './local-sealed-key-provider.ts';

/** The configured root of trust; its environment is the vault's mode (production and test keys never mix). */
export async function openKeyProvider(config: Config, logger?: Logger): Promise<KeyProvider> {
  const environment = config.mode;
  switch (config.keyProvider) {
    case 'local':
      if (config.mode === 'production') {
        throw new ConfigError('CARDHOLD_KEY_PROVIDER', 'the local provider is development-only');
      }
      return LocalKeyProvider.open(config.dataDir);
    case 'local-sealed': {
      const file = sealedKeyFile(config);
      if (config.keysAutoUnseal) return openAutoUnsealed(config, file, logger);
      return LocalSealedKeyProvider.open(file, environment);
    }
    case 'pkcs11': {
      // Imported here so that the native addon loads only where an HSM is configured.
      const { Pkcs11KeyProvider } = await import('./pkcs11-key-provider.ts');
      return Pkcs11KeyProvider.open(pkcs11Options(config));
    }
    case 'aws-kms': {
      if (!config.kmsKeyId)
        throw new ConfigError('CARDHOLD_KMS_KEY_ID', 'is required for the aws-kms provider');
      const client = (keyId: string) =>
        new AwsKmsClient({ keyId, region: config.kmsRegion, endpoint: config.kmsEndpoint });
      const previous = (config.kmsPreviousKeyIds ?? '')
        .split(',')
        .map((id) => id.trim())
        .filter((id) => id && id !== config.kmsKeyId);
      return new KmsKeyProvider(client(config.kmsKeyId), environment, previous.map(client));
    }
  }
}

export function sealedKeyFile(config: Config): string {
  return config.sealedKeyFile ?? defaultSealedKeyFile(config.dataDir);
}

export function pkcs11Options(config: Config) {
  if (!config.pkcs11Pin) throw new ConfigError('CARDHOLD_PKCS11_PIN', 'is required for the pkcs11 provider');
  if (config.pkcs11TokenLabel === undefined && config.pkcs11Slot === undefined) {
    throw new ConfigError(
      'CARDHOLD_PKCS11_TOKEN_LABEL',
      'or CARDHOLD_PKCS11_SLOT is required for the pkcs11 provider',
    );
  }
  return {
    library: config.pkcs11Library,
    tokenLabel: config.pkcs11TokenLabel,
    slot: config.pkcs11Slot,
    pin: config.pkcs11Pin.expose(),
    keyLabel: config.pkcs11KeyLabel,
    environment: config.mode,
  };
}

const DEV_SHARES = 'development-unseal-shares.json';

/**
 * DEVELOPMENT ONLY: keeps a threshold of shares beside the sealed key and submits them at start, so
 * `npm start` needs no custodians. The configuration refuses this in production mode; this check is the
 * second lock.
 */
async function openAutoUnsealed(config: Config, file: string, logger?: Logger): Promise<KeyProvider> {
  if (config.mode !== 'development') {
    throw new ConfigError('CARDHOLD_KEYS_AUTO_UNSEAL', 'is refused in production mode');
  }
  const sharesFile = path.join(path.dirname(file), DEV_SHARES);
  let shares: string[];
  try {
    shares = (JSON.parse(await readFile(sharesFile, 'utf8')) as { shares: string[] }).shares;
  } catch {
    const created = await initSealedKey({ file, shares: 3, threshold: 2, environment: 'development' });
    shares = created.shares.slice(0, 2);
    const label =
      'DEVELOPMENT ONLY: unseal shares kept on disk defeat split knowledge; never for real card data';
    await writeFile(sharesFile, JSON.stringify({ label, shares }, null, 2) + '\n', {
      mode: 0o600,
      flag: 'wx',
    });
  }
  const provider = await LocalSealedKeyProvider.open(file, 'development');
  for (const share of shares) await provider.submitShare(share);
  logger?.warn(
    { keyProvider: 'local-sealed', sharesFile },
    'DEVELOPMENT ONLY: the sealed master key was auto-unsealed from shares kept in the data directory',
  );
  return provider;
}
