import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.ts';
import { ConfigError } from '../config/config.ts';
import type { TlsMaterial } from '../http/create-server.ts';
import { openLocalCa, type ServiceRole } from '../keys/local-ca.ts';

export interface TlsSource {
  caFile: string;
  material(role: ServiceRole): Promise<TlsMaterial>;
}

/** Certificates from CARDHOLD_TLS_DIR, or (development only) from the local CA. */
export async function openTlsSource(config: Config): Promise<TlsSource> {
  if (config.tlsDir) {
    const dir = config.tlsDir;
    const read = async (file: string, setting: string) => {
      try {
        return await readFile(path.join(dir, file));
      } catch {
        throw new ConfigError(setting, `${file} is missing or unreadable in the TLS directory`);
      }
    };
    return {
      caFile: path.join(dir, 'ca.crt'),
      material: async (role) => ({
        ca: await read('ca.crt', 'CARDHOLD_TLS_DIR'),
        cert: await read(`${role}.crt`, 'CARDHOLD_TLS_DIR'),
        key: await read(`${role}.key`, 'CARDHOLD_TLS_DIR'),
      }),
    };
  }
  if (config.mode === 'production') {
    throw new ConfigError(
      'CARDHOLD_TLS_DIR',
      'is required in production mode (the local development CA is refused)',
    );
  }
  const ca = await openLocalCa(config.dataDir);
  return {
    caFile: ca.caFile,
    material: async (role) => {
      const issued = await ca.certificate(role);
      return {
        ca: Buffer.from(ca.caPem),
        cert: Buffer.from(issued.certPem),
        key: Buffer.from(issued.keyPem),
      };
    },
  };
}
