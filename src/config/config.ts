import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Secret } from '../shared/secret.ts';
import { type SettingDefinition, type SettingName, settings } from './settings.ts';

export type Mode = 'development' | 'production';

export interface Config {
  mode: Mode;
  dataDir: string;
  host: string;
  vaultPort: number;
  apiPort: number;
  acquirerPort: number;
  metricsHost: string | undefined;
  vaultMetricsPort: number;
  apiMetricsPort: number;
  acquirerMetricsPort: number;
  databaseUrl: Secret<string> | undefined;
  vaultDatabaseUrl: Secret<string> | undefined;
  apiDatabaseUrl: Secret<string> | undefined;
  databasePoolSize: number;
  redisUrl: Secret<string> | undefined;
  keyProvider: 'local' | 'local-sealed' | 'pkcs11' | 'aws-kms';
  tlsDir: string | undefined;
  logLevel: string;
  logFile: string | undefined;
  cvvTtlSeconds: number;
  cvvMaxUses: number;
  bodyLimitBytes: number;
  adminToken: Secret<string> | undefined;
  purgeIntervalSeconds: number;
  shutdownGraceSeconds: number;
  apiKeyCacheSeconds: number;
  keyProviderCheckSeconds: number;
  tlsReloadSeconds: number;
  oidcIssuer: string | undefined;
  oidcAudience: string | undefined;
  oidcJwksUri: string | undefined;
  oidcRoleMap: string | undefined;
  oidcRoleClaim: string;
  oidcMfaAmr: string;
  oidcDashboardClientId: string | undefined;
  oidcAuthorizationEndpoint: string | undefined;
  oidcTokenEndpoint: string | undefined;
  oidcDashboardScope: string;
  rateLimitTokenizePerMinute: number;
  rateLimitSignInPerMinute: number;
  auditLanes: number;
  auditCheckpointRecords: number;
  auditCheckpointSeconds: number;
  auditStream: 'none' | 'stdout' | 'file';
  auditStreamFile: string | undefined;
  forwardAllowlist: string | undefined;
  forwardTimeoutMs: number;
  forwardCaFile: string | undefined;
  vaultUrl: string | undefined;
  connectors: string | undefined;
  routingRules: string | undefined;
  reconcileIntervalSeconds: number;
  acquirerHangMs: number;
  acquirerLatencyMs: number;
  acquirerLatencySeed: number;
  sealedKeyFile: string | undefined;
  keysAutoUnseal: boolean;
  pkcs11Library: string;
  pkcs11TokenLabel: string | undefined;
  pkcs11Slot: number | undefined;
  pkcs11Pin: Secret<string> | undefined;
  pkcs11KeyLabel: string;
  kmsKeyId: string | undefined;
  kmsRegion: string | undefined;
  kmsEndpoint: string | undefined;
  webhookRetryBaseMs: number;
  webhookRetryCapMs: number;
  webhookRetryHorizonMs: number;
  webhookPollIntervalMs: number;
  webhookTimeoutMs: number;
  cryptoperiodPanDays: number;
  cryptoperiodCvvDays: number;
  cryptoperiodFingerprintDays: number;
  cryptoperiodAuditDays: number;
  cryptoperiodWarnDays: number;
  demoPort: number;
  kmsPreviousKeyIds: string | undefined;
  keyRetireGraceSeconds: number;
  dashboardOrigin: string | undefined;
  dashboardVaultUrl: string | undefined;
  scanReportFile: string | undefined;
}

/** A bad setting: names the variable and what is wrong, never the value. */
export class ConfigError extends Error {
  readonly setting: string;
  constructor(setting: string, problem: string) {
    super(`${setting}: ${problem}`);
    this.name = 'ConfigError';
    this.setting = setting;
  }
}

type Source = Record<string, string | undefined>;

/**
 * Builds the configuration from, in order of precedence: `CARDHOLD_*` variables, `<VAR>_FILE` for
 * secrets (as Kubernetes mounts them), and the optional file named by CARDHOLD_CONFIG_FILE (YAML or
 * JSON, keys are the variable names). Throws ConfigError on the first bad setting.
 */
export function loadConfig(env: Source = process.env, cwd = process.cwd()): Config {
  const fileValues = readConfigFile(env, cwd);
  const raw: Partial<Record<SettingName, unknown>> = {};
  for (const [name, def] of Object.entries(settings) as [SettingName, SettingDefinition][]) {
    raw[name] = resolveSetting(def, env, fileValues, cwd);
  }
  const config = raw as unknown as Config;
  if (config.oidcIssuer) {
    for (const [name, value] of [
      ['CARDHOLD_OIDC_AUDIENCE', config.oidcAudience],
      ['CARDHOLD_OIDC_JWKS_URI', config.oidcJwksUri],
      ['CARDHOLD_OIDC_ROLE_MAP', config.oidcRoleMap],
    ] as const) {
      if (!value) throw new ConfigError(name, 'is required when CARDHOLD_OIDC_ISSUER is set');
    }
  }
  if (!config.oidcDashboardClientId && (config.oidcAuthorizationEndpoint || config.oidcTokenEndpoint)) {
    throw new ConfigError(
      'CARDHOLD_OIDC_DASHBOARD_CLIENT_ID',
      'is required when the provider endpoints for dashboard sign-in are set',
    );
  }
  if (config.oidcDashboardClientId) {
    if (!config.oidcIssuer) {
      throw new ConfigError(
        'CARDHOLD_OIDC_ISSUER',
        'is required when CARDHOLD_OIDC_DASHBOARD_CLIENT_ID is set',
      );
    }
    for (const [name, value] of [
      ['CARDHOLD_OIDC_AUTHORIZATION_ENDPOINT', config.oidcAuthorizationEndpoint],
      ['CARDHOLD_OIDC_TOKEN_ENDPOINT', config.oidcTokenEndpoint],
    ] as const) {
      if (!value) throw new ConfigError(name, 'is required when CARDHOLD_OIDC_DASHBOARD_CLIENT_ID is set');
      if (!providerUrl(value)) throw new ConfigError(name, 'must be an https URL (http only on loopback)');
    }
  }
  if (config.auditStream === 'file' && !config.auditStreamFile) {
    throw new ConfigError('CARDHOLD_AUDIT_STREAM_FILE', 'is required when CARDHOLD_AUDIT_STREAM is file');
  }
  checkMode(config);
  return config;
}

/** An identity provider's endpoint: https, or http on a loopback address (tests, local providers). */
function providerUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password || url.hash) return false;
  if (url.protocol === 'https:') return true;
  // Literal loopback addresses only: a name could resolve elsewhere.
  return url.protocol === 'http:' && ['127.0.0.1', '[::1]'].includes(url.hostname);
}

function readConfigFile(env: Source, cwd: string): Source {
  const file = env['CARDHOLD_CONFIG_FILE'];
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(path.resolve(cwd, file), 'utf8');
  } catch {
    throw new ConfigError('CARDHOLD_CONFIG_FILE', 'the file cannot be read');
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch {
    throw new ConfigError('CARDHOLD_CONFIG_FILE', 'the file is not valid YAML or JSON');
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(
      'CARDHOLD_CONFIG_FILE',
      'the file must hold a mapping of CARDHOLD_* names to values',
    );
  }
  const known = new Set(Object.values(settings).map((s) => s.env as string));
  const out: Source = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!known.has(key)) throw new ConfigError(key, 'unknown setting in CARDHOLD_CONFIG_FILE');
    if (value !== null && typeof value === 'object') throw new ConfigError(key, 'must be a scalar value');
    out[key] = value === null || value === undefined ? undefined : String(value);
  }
  return out;
}

function resolveSetting(def: SettingDefinition, env: Source, file: Source, cwd: string): unknown {
  let value = env[def.env];
  const fileVar = `${def.env}_FILE`;
  if (def.secret && env[fileVar] !== undefined && env[fileVar] !== '') {
    if (value !== undefined && value !== '')
      throw new ConfigError(def.env, `set either ${def.env} or ${fileVar}, not both`);
    try {
      value = readFileSync(path.resolve(cwd, env[fileVar] as string), 'utf8').trim();
    } catch {
      throw new ConfigError(fileVar, 'the file cannot be read');
    }
  }
  if (value === undefined || value === '') value = file[def.env];
  if (value === undefined || value === '') {
    if (def.default === undefined) return undefined;
    value = String(def.default);
  }
  const parsed = parseValue(def, value.trim(), cwd);
  return def.secret ? new Secret(parsed as string) : parsed;
}

function parseValue(def: SettingDefinition, value: string, cwd: string): unknown {
  switch (def.type) {
    case 'integer': {
      if (!/^-?\d+$/.test(value)) throw new ConfigError(def.env, 'must be a whole number');
      const n = Number(value);
      if (def.min !== undefined && n < def.min) throw new ConfigError(def.env, `must be at least ${def.min}`);
      if (def.max !== undefined && n > def.max) throw new ConfigError(def.env, `must be at most ${def.max}`);
      return n;
    }
    case 'boolean':
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw new ConfigError(def.env, 'must be true or false');
    case 'enum':
      if (!def.values?.includes(value))
        throw new ConfigError(def.env, `must be one of ${def.values?.join(', ')}`);
      return value;
    case 'url': {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        // Never echo the value: it may carry a password.
        throw new ConfigError(def.env, 'must be a valid URL');
      }
      const schemes = def.env.includes('REDIS') ? ['redis:', 'rediss:'] : ['postgres:', 'postgresql:'];
      if (!schemes.includes(url.protocol)) {
        throw new ConfigError(
          def.env,
          `must use the ${schemes.map((s) => s.slice(0, -1)).join(' or ')} scheme`,
        );
      }
      return value;
    }
    case 'path':
      return path.resolve(cwd, value);
    case 'string':
      return value;
  }
}

function checkMode(config: Config): void {
  if (config.mode !== 'production') return;
  // One token shared by whoever holds it, without MFA (PCI DSS 8.2.2, 8.4.2): development only.
  if (config.adminToken) {
    throw new ConfigError(
      'CARDHOLD_ADMIN_TOKEN',
      'is a shared credential and is refused in production mode; create the first administrator with `cardhold operators bootstrap`',
    );
  }
  if (config.keyProvider === 'local') {
    throw new ConfigError(
      'CARDHOLD_KEY_PROVIDER',
      'the local provider holds a development-only key and is refused in production mode',
    );
  }
  // Processes learn of a rotation within 30 s (key and master caches); retiring sooner could destroy a
  // version that one of them still wraps with.
  if (config.keyRetireGraceSeconds < 60) {
    throw new ConfigError('CARDHOLD_KEY_RETIRE_GRACE_SECONDS', 'must be at least 60 in production mode');
  }
  if (config.keysAutoUnseal) {
    throw new ConfigError(
      'CARDHOLD_KEYS_AUTO_UNSEAL',
      'unseals from shares kept on disk, which defeats split knowledge; it is refused in production mode',
    );
  }
}

/** Settings for display: secrets show only whether they are set. */
export function describeConfig(config: Config): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [name, def] of Object.entries(settings) as [SettingName, SettingDefinition][]) {
    const value = config[name];
    if (def.secret) out[def.env] = value === undefined ? null : '(set)';
    else out[def.env] = (value as string | number | boolean | undefined) ?? null;
  }
  return out;
}
