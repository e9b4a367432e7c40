import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';

/** True when SoftHSM2 is installed (`.ci/run` installs it; a test skips with a reason otherwise). */
export const softHsmAvailable = (): boolean => existsSync(SOFTHSM_LIBRARY);

export interface SoftHsmToken {
  label: string;
  pin: string;
  /** The environment variables that point SoftHSM2 at this token's directory. */
  env: Record<string, string>;
  remove(): Promise<void>;
}

/**
 * A fresh SoftHSM2 token in a temporary directory under test-output/, with its own configuration file;
 * SOFTHSM2_CONF is set for this process so that the library loaded here finds it.
 */
export async function initSoftHsmToken(label = 'cardhold-test'): Promise<SoftHsmToken> {
  await mkdir('test-output', { recursive: true });
  const dir = await mkdtemp(path.resolve('test-output', 'softhsm-'));
  const tokens = path.join(dir, 'tokens');
  await mkdir(tokens);
  const conf = path.join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const pin = `pin-${Math.random().toString(36).slice(2, 10)}`;
  const env = { SOFTHSM2_CONF: conf };
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--so-pin', `so-${pin}`, '--pin', pin],
    { env: { ...process.env, ...env }, stdio: 'ignore' },
  );
  process.env['SOFTHSM2_CONF'] = conf;
  return { label, pin, env, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Opens the token with the pkcs11 provider and creates master key version 1 in it. */
export async function createSoftHsmMasterKey(token: SoftHsmToken, environment: 'development' | 'production') {
  const { Pkcs11KeyProvider } = await import('../src/keys/pkcs11-key-provider.ts');
  const provider = await Pkcs11KeyProvider.open(
    {
      library: SOFTHSM_LIBRARY,
      tokenLabel: token.label,
      pin: token.pin,
      keyLabel: 'cardhold-master',
      environment,
    },
    false,
  );
  try {
    return provider.createMasterKey();
  } finally {
    await provider.close();
  }
}

/** The settings that point a cardhold platform at this token (the pkcs11 provider). */
export const pkcs11Env = (token: SoftHsmToken): Record<string, string> => ({
  CARDHOLD_KEY_PROVIDER: 'pkcs11',
  CARDHOLD_PKCS11_TOKEN_LABEL: token.label,
  CARDHOLD_PKCS11_PIN: token.pin,
});
