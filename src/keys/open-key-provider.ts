import { type Config, ConfigError } from '../config/config.ts';
import type { KeyProvider } from './key-provider.ts';
import { LocalKeyProvider } from './local-key-provider.ts';

/** The configured root of trust. */
export async function openKeyProvider(config: Config): Promise<KeyProvider> {
  switch (config.keyProvider) {
    case 'local':
      if (config.mode === 'production') {
        throw new ConfigError('CARDHOLD_KEY_PROVIDER', 'the local provider is development-only');
      }
      return LocalKeyProvider.open(config.dataDir);
  }
}
