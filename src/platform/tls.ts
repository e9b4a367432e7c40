import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.ts';
import { ConfigError } from '../config/config.ts';
import type { TlsMaterial } from '../http/create-server.ts';
import { openLocalCa, type ServiceRole } from '../keys/local-ca.ts';

export interface TlsSource {
  caFile: string;
  material(role: ServiceRole): Promise<TlsMaterial>;
  /**
   * Calls `apply` whenever the role's certificate, key or CA bundle changes on disk (CARDHOLD_TLS_DIR,
   * polled every CARDHOLD_TLS_RELOAD_SECONDS), so that rotation needs no restart. Returns a stop function.
   */
  watch(
    role: ServiceRole,
    apply: (material: TlsMaterial) => void,
    onError: (error: unknown) => void,
  ): () => void;
}

const digest = (material: TlsMaterial) =>
  createHash('sha256').update(material.ca).update(material.cert).update(material.key).digest('hex');

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
    const material = async (role: ServiceRole) => ({
      ca: await read('ca.crt', 'CARDHOLD_TLS_DIR'),
      cert: await read(`${role}.crt`, 'CARDHOLD_TLS_DIR'),
      key: await read(`${role}.key`, 'CARDHOLD_TLS_DIR'),
    });
    return {
      caFile: path.join(dir, 'ca.crt'),
      material,
      watch: (role, apply, onError) => {
        // Nothing is taken as applied: the server, its clients and the client trust each read the files
        // at start-up, at different moments, so the first poll applies what is there now, once, and a
        // change made during start-up cannot be missed.
        let last: string | undefined;
        // Files seen that could not be applied (a key and certificate that do not match, a file caught
        // half-written by a rotation that does not swap files atomically): reported once, the running
        // context kept, and tried again as soon as the files change.
        let refused: string | undefined;
        const timer = setInterval(() => {
          material(role).then((m) => {
            const now = digest(m);
            if (now === last || now === refused) return;
            try {
              apply(m);
            } catch (error) {
              refused = now;
              onError(error);
              return;
            }
            last = now;
            refused = undefined;
          }, onError);
        }, config.tlsReloadSeconds * 1000);
        timer.unref();
        return () => clearInterval(timer);
      },
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
    // The development CA renews its certificates at start-up; nothing changes under a running process.
    watch: () => () => undefined,
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
