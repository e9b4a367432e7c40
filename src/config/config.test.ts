import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, describeConfig, loadConfig } from './config.ts';
import { settings } from './settings.ts';

const badValue = (env: Record<string, string>, setting: string, echoAllowed = false) => {
  try {
    loadConfig(env, '/srv');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.setting, setting);
    if (!echoAllowed)
      for (const value of Object.values(env))
        assert.ok(!error.message.includes(value), 'never echoes the value');
    return error.message;
  }
  assert.fail('expected a ConfigError');
};

test('defaults: development mode, embedded everything, standard ports', () => {
  const config = loadConfig({}, '/srv');
  assert.equal(config.mode, 'development');
  assert.equal(config.dataDir, '/srv/.cardhold');
  assert.deepEqual([config.vaultPort, config.apiPort, config.acquirerPort], [8443, 8444, 8445]);
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.cvvTtlSeconds, 900);
  assert.equal(config.cvvMaxUses, 3);
});

test('bad settings stop start-up naming the variable, not the value', () => {
  badValue({ CARDHOLD_VAULT_PORT: '84x3' }, 'CARDHOLD_VAULT_PORT');
  badValue({ CARDHOLD_VAULT_PORT: '70000' }, 'CARDHOLD_VAULT_PORT');
  badValue({ CARDHOLD_CVV_TTL_SECONDS: '7200' }, 'CARDHOLD_CVV_TTL_SECONDS');
  badValue({ CARDHOLD_MODE: 'staging' }, 'CARDHOLD_MODE');
  badValue({ CARDHOLD_DATABASE_URL: 'not a url with password hunter22' }, 'CARDHOLD_DATABASE_URL');
  badValue({ CARDHOLD_DATABASE_URL: 'mysql://user:hunter22@db/x' }, 'CARDHOLD_DATABASE_URL');
  badValue({ CARDHOLD_REDIS_URL: 'postgres://user:hunter22@db/x' }, 'CARDHOLD_REDIS_URL');
  // The explanation names the mode, which is the value here.
  const message = badValue({ CARDHOLD_MODE: 'production' }, 'CARDHOLD_KEY_PROVIDER', true);
  assert.match(message, /development-only/);
  // The shared bootstrap token is a development convenience only.
  const shared = badValue(
    { CARDHOLD_MODE: 'production', CARDHOLD_ADMIN_TOKEN: 'adm_shared-token-value-1234' },
    'CARDHOLD_ADMIN_TOKEN',
    true,
  );
  assert.match(shared, /operators bootstrap/);
  assert.ok(!shared.includes('adm_shared-token-value-1234'), 'never echoes the token');
});

test('secrets come from _FILE variables, never both, and are never printed', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-config-'));
  try {
    await writeFile(path.join(dir, 'db'), 'postgres://cardhold:s3cret-pass@db:5432/cardhold\n');
    const config = loadConfig({ CARDHOLD_DATABASE_URL_FILE: path.join(dir, 'db') }, dir);
    assert.equal(config.databaseUrl?.expose(), 'postgres://cardhold:s3cret-pass@db:5432/cardhold');
    assert.ok(!JSON.stringify(config).includes('s3cret'), 'a Config serialises without secrets');
    const described = describeConfig(config);
    assert.equal(described['CARDHOLD_DATABASE_URL'], '(set)');
    assert.ok(!JSON.stringify(described).includes('s3cret'));
    badValue({ CARDHOLD_DATABASE_URL_FILE: path.join(dir, 'missing') }, 'CARDHOLD_DATABASE_URL_FILE');
    badValue(
      { CARDHOLD_DATABASE_URL_FILE: path.join(dir, 'db'), CARDHOLD_DATABASE_URL: 'postgres://x@y/z' },
      'CARDHOLD_DATABASE_URL',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an optional YAML file, overridden by the environment; unknown keys are refused', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-config-'));
  try {
    const file = path.join(dir, 'cardhold.yaml');
    await writeFile(file, 'CARDHOLD_VAULT_PORT: 9443\nCARDHOLD_CVV_MAX_USES: 2\n');
    const config = loadConfig({ CARDHOLD_CONFIG_FILE: file, CARDHOLD_CVV_MAX_USES: '1' }, dir);
    assert.equal(config.vaultPort, 9443);
    assert.equal(config.cvvMaxUses, 1);
    await writeFile(file, 'CARDHOLD_VAULT_PROT: 9443\n');
    badValue({ CARDHOLD_CONFIG_FILE: file }, 'CARDHOLD_VAULT_PROT');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('docs/configuration.md documents every setting and only real ones', async () => {
  const doc = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const documented = new Set(doc.match(/CARDHOLD_[A-Z0-9_]+/g) ?? []);
  for (const def of Object.values(settings)) assert.ok(documented.has(def.env), `${def.env} is documented`);
  const known = new Set<string>([
    ...Object.values(settings).map((s) => s.env as string),
    'CARDHOLD_CONFIG_FILE',
  ]);
  for (const name of documented) {
    const base = name.replace(/_FILE$/, '');
    assert.ok(known.has(name) || known.has(base), `${name} in the docs exists in the code`);
  }
});

test('dashboard sign-in through OIDC needs the provider settings, on https or loopback only', () => {
  const oidc = {
    CARDHOLD_OIDC_ISSUER: 'https://idp.example',
    CARDHOLD_OIDC_AUDIENCE: 'cardhold',
    CARDHOLD_OIDC_JWKS_URI: 'https://idp.example/jwks',
    CARDHOLD_OIDC_ROLE_MAP: '{"ops":"operator-viewer"}',
  };
  const dashboard = {
    CARDHOLD_OIDC_DASHBOARD_CLIENT_ID: 'cardhold-dashboard',
    CARDHOLD_OIDC_AUTHORIZATION_ENDPOINT: 'https://idp.example/authorize',
    CARDHOLD_OIDC_TOKEN_ENDPOINT: 'https://idp.example/token',
  };
  const config = loadConfig({ ...oidc, ...dashboard });
  assert.equal(config.oidcDashboardClientId, 'cardhold-dashboard');
  assert.equal(config.oidcDashboardScope, 'openid');
  assert.equal(loadConfig(oidc).oidcDashboardClientId, undefined, 'off unless asked for');
  const refused = (env: Record<string, string>, variable: string) =>
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => e instanceof ConfigError && e.setting === variable,
    );
  refused(dashboard, 'CARDHOLD_OIDC_ISSUER');
  refused(
    { ...oidc, CARDHOLD_OIDC_TOKEN_ENDPOINT: 'https://idp.example/token' },
    'CARDHOLD_OIDC_DASHBOARD_CLIENT_ID',
  );
  refused(
    { ...oidc, ...dashboard, CARDHOLD_OIDC_TOKEN_ENDPOINT: 'http://localhost:8080/token' },
    'CARDHOLD_OIDC_TOKEN_ENDPOINT',
  );
  refused({ ...oidc, ...dashboard, CARDHOLD_OIDC_TOKEN_ENDPOINT: '' }, 'CARDHOLD_OIDC_TOKEN_ENDPOINT');
  refused(
    { ...oidc, ...dashboard, CARDHOLD_OIDC_AUTHORIZATION_ENDPOINT: 'http://idp.example/authorize' },
    'CARDHOLD_OIDC_AUTHORIZATION_ENDPOINT',
  );
  assert.equal(
    loadConfig({ ...oidc, ...dashboard, CARDHOLD_OIDC_TOKEN_ENDPOINT: 'http://127.0.0.1:8080/token' })
      .oidcTokenEndpoint,
    'http://127.0.0.1:8080/token',
  );
});
