/**
 * Every setting cardhold reads, in one table: its environment variable, type, default, bounds and
 * whether it is secret. The loader, the docs test and `cardhold config` all read this table.
 */
export type SettingType = 'string' | 'integer' | 'enum' | 'url' | 'path' | 'boolean';

export interface SettingDefinition {
  env: string;
  type: SettingType;
  description: string;
  default?: string | number | boolean;
  values?: readonly string[];
  min?: number;
  max?: number;
  /** Secret settings may also come from `<env>_FILE` and are never printed. */
  secret?: boolean;
}

export const settings = {
  mode: {
    env: 'CARDHOLD_MODE',
    type: 'enum',
    values: ['development', 'production'],
    default: 'development',
    description:
      'development allows the embedded PostgreSQL, in-process volatile store, local development keys and local CA; production refuses all of them.',
  },
  dataDir: {
    env: 'CARDHOLD_DATA_DIR',
    type: 'path',
    default: '.cardhold',
    description: 'Directory for embedded PostgreSQL data, development keys and the local CA (created 0700).',
  },
  host: {
    env: 'CARDHOLD_HOST',
    type: 'string',
    default: '127.0.0.1',
    description: 'Address every role listens on. Use 0.0.0.0 inside a container.',
  },
  vaultPort: {
    env: 'CARDHOLD_VAULT_PORT',
    type: 'integer',
    default: 8443,
    min: 0,
    max: 65535,
    description: 'HTTPS port of the vault role (0 picks a free port).',
  },
  apiPort: {
    env: 'CARDHOLD_API_PORT',
    type: 'integer',
    default: 8444,
    min: 0,
    max: 65535,
    description: 'HTTPS port of the api role (0 picks a free port).',
  },
  acquirerPort: {
    env: 'CARDHOLD_ACQUIRER_PORT',
    type: 'integer',
    default: 8445,
    min: 0,
    max: 65535,
    description: 'HTTPS port of the test acquirer role (0 picks a free port).',
  },
  metricsHost: {
    env: 'CARDHOLD_METRICS_HOST',
    type: 'string',
    description:
      'Address the Prometheus metrics servers listen on. Unset: the same as CARDHOLD_HOST. Keep it on a network only the scraper reaches.',
  },
  vaultMetricsPort: {
    env: 'CARDHOLD_VAULT_METRICS_PORT',
    type: 'integer',
    default: 9464,
    min: 0,
    max: 65535,
    description: "HTTPS port serving the vault role's Prometheus /metrics (0 picks a free port).",
  },
  apiMetricsPort: {
    env: 'CARDHOLD_API_METRICS_PORT',
    type: 'integer',
    default: 9465,
    min: 0,
    max: 65535,
    description: "HTTPS port serving the api role's Prometheus /metrics (0 picks a free port).",
  },
  acquirerMetricsPort: {
    env: 'CARDHOLD_ACQUIRER_METRICS_PORT',
    type: 'integer',
    default: 9466,
    min: 0,
    max: 65535,
    description: "HTTPS port serving the test acquirer role's Prometheus /metrics (0 picks a free port).",
  },
  databaseUrl: {
    env: 'CARDHOLD_DATABASE_URL',
    type: 'url',
    secret: true,
    description:
      'PostgreSQL URL of an administrative role, used by `cardhold migrate` (and, in development mode, to create per-role logins). Unset in development mode: an embedded PostgreSQL is started.',
  },
  vaultDatabaseUrl: {
    env: 'CARDHOLD_VAULT_DATABASE_URL',
    type: 'url',
    secret: true,
    description:
      'PostgreSQL URL of the vault runtime login (member of cardhold_vault_runtime). Required in production for the vault role.',
  },
  apiDatabaseUrl: {
    env: 'CARDHOLD_API_DATABASE_URL',
    type: 'url',
    secret: true,
    description:
      'PostgreSQL URL of the api runtime login (member of cardhold_api_runtime). Required in production for the api role.',
  },
  databasePoolSize: {
    env: 'CARDHOLD_DATABASE_POOL_SIZE',
    type: 'integer',
    default: 10,
    min: 1,
    max: 200,
    description: 'Connections per role pool.',
  },
  redisUrl: {
    env: 'CARDHOLD_REDIS_URL',
    type: 'url',
    secret: true,
    description:
      'Redis URL for the CVV volatile store. Unset in development mode: an in-process store is used. The Redis must not persist (no RDB/AOF).',
  },
  keyProvider: {
    env: 'CARDHOLD_KEY_PROVIDER',
    type: 'enum',
    values: ['local', 'local-sealed', 'pkcs11', 'aws-kms'],
    default: 'local',
    description:
      'Root of the key hierarchy. `local` is a development-only master key file, refused in production mode; `local-sealed` is a master key sealed on disk and unsealed by k-of-n custodian shares (`cardhold keys init`); `pkcs11` keeps the master key in an HSM; `aws-kms` in AWS KMS. See docs/keys.md.',
  },
  tlsDir: {
    env: 'CARDHOLD_TLS_DIR',
    type: 'path',
    description:
      'Directory with ca.crt and <role>.crt/<role>.key for each role. Unset in development mode: a local CA under the data directory issues them.',
  },
  logLevel: {
    env: 'CARDHOLD_LOG_LEVEL',
    type: 'enum',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    description: 'Application log level.',
  },
  logFile: {
    env: 'CARDHOLD_LOG_FILE',
    type: 'path',
    description: 'Write JSON logs to this file instead of stdout.',
  },
  tlsReloadSeconds: {
    env: 'CARDHOLD_TLS_RELOAD_SECONDS',
    type: 'integer',
    default: 60,
    min: 1,
    max: 86_400,
    description:
      'How often the certificates, keys and CA bundle in CARDHOLD_TLS_DIR are checked for changes; a change takes effect for new connections without a restart. Files that do not make a working pair (a key read before its certificate was written) are reported once (TLS reload failed) and the running certificate kept until they change again.',
  },
  oidcIssuer: {
    env: 'CARDHOLD_OIDC_ISSUER',
    type: 'string',
    description:
      'Accept OIDC access tokens from this issuer (exact iss). Setting it requires CARDHOLD_OIDC_AUDIENCE, CARDHOLD_OIDC_JWKS_URI and CARDHOLD_OIDC_ROLE_MAP.',
  },
  oidcAudience: {
    env: 'CARDHOLD_OIDC_AUDIENCE',
    type: 'string',
    description: "cardhold's API identifier at the identity provider (the tokens' aud).",
  },
  oidcJwksUri: {
    env: 'CARDHOLD_OIDC_JWKS_URI',
    type: 'string',
    description: "The provider's JWKS URL (https; http only on loopback).",
  },
  oidcRoleMap: {
    env: 'CARDHOLD_OIDC_ROLE_MAP',
    type: 'string',
    description:
      'JSON object mapping the provider\'s group names to the roles a person may hold (operator-viewer, operator-support, operator-reveal, security-admin), e.g. {"pci-security":"security-admin","support":"operator-support"}.',
  },
  oidcRoleClaim: {
    env: 'CARDHOLD_OIDC_ROLE_CLAIM',
    type: 'string',
    default: 'groups',
    description: 'The token claim that lists the groups.',
  },
  oidcMfaAmr: {
    env: 'CARDHOLD_OIDC_MFA_AMR',
    type: 'string',
    default: 'mfa,otp,hwk,swk',
    description: 'Comma-separated amr values that count as multi-factor authentication.',
  },
  oidcDashboardClientId: {
    env: 'CARDHOLD_OIDC_DASHBOARD_CLIENT_ID',
    type: 'string',
    description:
      "The operator dashboard's client id at the identity provider (a public client: authorization code with PKCE, no secret). Setting it offers sign-in through the provider on the dashboard; it requires CARDHOLD_OIDC_ISSUER, CARDHOLD_OIDC_AUTHORIZATION_ENDPOINT and CARDHOLD_OIDC_TOKEN_ENDPOINT.",
  },
  oidcAuthorizationEndpoint: {
    env: 'CARDHOLD_OIDC_AUTHORIZATION_ENDPOINT',
    type: 'string',
    description:
      "The provider's authorization endpoint, where the dashboard sends the operator to sign in (https; http only on loopback).",
  },
  oidcTokenEndpoint: {
    env: 'CARDHOLD_OIDC_TOKEN_ENDPOINT',
    type: 'string',
    description:
      "The provider's token endpoint, where the dashboard exchanges the code for an access token; it must answer the dashboard's origin with CORS (https; http only on loopback).",
  },
  oidcDashboardScope: {
    env: 'CARDHOLD_OIDC_DASHBOARD_SCOPE',
    type: 'string',
    default: 'openid',
    description:
      'The scope the dashboard asks for; the access token must carry CARDHOLD_OIDC_AUDIENCE, which the dashboard also sends as the audience parameter.',
  },
  rateLimitTokenizePerMinute: {
    env: 'CARDHOLD_RATE_LIMIT_TOKENIZE_PER_MINUTE',
    type: 'integer',
    default: 60_000,
    min: 0,
    max: 100_000_000,
    description:
      'Tokenization requests (single, batch, CVV slot) each credential may make per minute; 0 turns the limit off. Counted in Redis when CARDHOLD_REDIS_URL is set (shared by replicas), else per process.',
  },
  rateLimitSignInPerMinute: {
    env: 'CARDHOLD_RATE_LIMIT_SIGN_IN_PER_MINUTE',
    type: 'integer',
    default: 30,
    min: 0,
    max: 100_000,
    description:
      'Sign-in requests (password and TOTP steps) each client address may make per minute, on top of the per-account lockout; 0 turns the limit off.',
  },
  auditLanes: {
    env: 'CARDHOLD_AUDIT_LANES',
    type: 'integer',
    default: 8,
    min: 1,
    max: 64,
    description:
      'Hash chains ("lanes") each process writes audit records into, so concurrent requests do not queue behind one chain head.',
  },
  auditCheckpointRecords: {
    env: 'CARDHOLD_AUDIT_CHECKPOINT_RECORDS',
    type: 'integer',
    default: 1000,
    min: 1,
    max: 1_000_000,
    description: 'Sign an audit checkpoint after this many records written by the vault process.',
  },
  auditCheckpointSeconds: {
    env: 'CARDHOLD_AUDIT_CHECKPOINT_SECONDS',
    type: 'integer',
    default: 60,
    min: 1,
    max: 86_400,
    description:
      'Sign an audit checkpoint at least this often when records were added; bounds how much of the tail an attacker with database access could rewrite undetected.',
  },
  auditStream: {
    env: 'CARDHOLD_AUDIT_STREAM',
    type: 'enum',
    values: ['none', 'stdout', 'file'],
    default: 'none',
    description:
      'Also stream committed audit records as JSON lines (for Fluentd or Filebeat): to stdout, or appended to CARDHOLD_AUDIT_STREAM_FILE.',
  },
  auditStreamFile: {
    env: 'CARDHOLD_AUDIT_STREAM_FILE',
    type: 'path',
    description: 'File the audit stream is appended to (mode 0600) when CARDHOLD_AUDIT_STREAM=file.',
  },
  cvvTtlSeconds: {
    env: 'CARDHOLD_CVV_TTL_SECONDS',
    type: 'integer',
    default: 900,
    min: 1,
    max: 3600,
    description: 'Default lifetime of a CVV slot; requests may ask for less, never more than 3600.',
  },
  cvvMaxUses: {
    env: 'CARDHOLD_CVV_MAX_USES',
    type: 'integer',
    default: 3,
    min: 1,
    max: 10,
    description: 'Default number of uses of a CVV slot.',
  },
  bodyLimitBytes: {
    env: 'CARDHOLD_BODY_LIMIT_BYTES',
    type: 'integer',
    default: 262144,
    min: 1024,
    max: 1048576,
    description: 'Largest accepted request body.',
  },
  adminToken: {
    env: 'CARDHOLD_ADMIN_TOKEN',
    type: 'string',
    secret: true,
    description:
      'Development only: a shared bearer token acting as security-admin (never card data). Unset: development mode generates one into <data dir>/admin-token. Refused in production mode, where administrators are operators (cardhold operators bootstrap).',
  },
  purgeIntervalSeconds: {
    env: 'CARDHOLD_PURGE_INTERVAL_SECONDS',
    type: 'integer',
    default: 60,
    min: 1,
    max: 86400,
    description: 'How often the vault deletes expired tokens.',
  },
  shutdownGraceSeconds: {
    env: 'CARDHOLD_SHUTDOWN_GRACE_SECONDS',
    type: 'integer',
    default: 10,
    min: 1,
    max: 300,
    description: 'How long shutdown waits for in-flight requests.',
  },
  keyProviderCheckSeconds: {
    env: 'CARDHOLD_KEY_PROVIDER_CHECK_SECONDS',
    type: 'integer',
    default: 5,
    min: 1,
    max: 60,
    description:
      'How often the vault checks its key provider. On a failure it drops every cached key, so card data stops being served within this time of the provider going away (fail closed), and again as soon as it is back.',
  },
  apiKeyCacheSeconds: {
    env: 'CARDHOLD_API_KEY_CACHE_SECONDS',
    type: 'integer',
    default: 5,
    min: 0,
    max: 60,
    description:
      'How long a verified API key is cached in memory; bounds how late a revocation takes effect.',
  },
  // Payments (issue 5): the forward proxy, connectors, routing, reconciliation.
  forwardAllowlist: {
    env: 'CARDHOLD_FORWARD_ALLOWLIST',
    type: 'string',
    description:
      'Comma-separated https base URLs (origin and path prefix) the vault may forward card data to. In development the local test acquirer is added automatically.',
  },
  forwardTimeoutMs: {
    env: 'CARDHOLD_FORWARD_TIMEOUT_MS',
    type: 'integer',
    default: 10000,
    min: 100,
    max: 60000,
    description: 'How long the vault waits for a processor to answer a forwarded request.',
  },
  forwardCaFile: {
    env: 'CARDHOLD_FORWARD_CA_FILE',
    type: 'path',
    description:
      'Extra CA bundle (PEM) for processors’ certificates, added to the system roots. In development the local CA is trusted too.',
  },
  vaultUrl: {
    env: 'CARDHOLD_VAULT_URL',
    type: 'string',
    description:
      'Base URL of the vault, for the api role (mTLS as spiffe://cardhold/api). Defaults to the vault in the same process.',
  },
  connectors: {
    env: 'CARDHOLD_CONNECTORS',
    type: 'string',
    description:
      'JSON list of processor connectors, e.g. [{"name":"acquirer","type":"test-acquirer","url":"https://acquirer:8445"}]. A connector without a url is the test acquirer in the same process, which is also the default. Optional "capabilities" turns off what a contract does not allow: multiple_captures, partial_capture, partial_refund, void (false), currencies (a list). Unknown fields stop start-up.',
  },
  routingRules: {
    env: 'CARDHOLD_ROUTING_RULES',
    type: 'string',
    description:
      'JSON list of ordered routing rules, e.g. [{"when":{"currency":["EUR"]},"connectors":["a","b"]}]; the first rule that matches gives the connectors to try in order. Default: every connector in the order listed. Types, checked at start-up: connectors a non-empty list of distinct configured connector names; in when, each optional, currency a non-empty list of supported ISO 4217 codes, brand a non-empty list of card brands, merchant a non-empty list of merchant ids (mer_…, compared exactly), min_amount and max_amount non-negative whole numbers of minor units, both inclusive, min ≤ max. Anything else stops start-up, naming the rule and field.',
  },
  reconcileIntervalSeconds: {
    env: 'CARDHOLD_RECONCILE_INTERVAL_SECONDS',
    type: 'integer',
    default: 30,
    min: 1,
    max: 3600,
    description: 'How often the api settles payment attempts whose outcome is unknown.',
  },
  acquirerHangMs: {
    env: 'CARDHOLD_ACQUIRER_HANG_MS',
    type: 'integer',
    default: 60_000,
    min: 0,
    max: 600_000,
    description:
      "How long the test acquirer holds a request with its timeout test card open before answering 504 (docs/test-acquirer.md); set it above the caller's timeout.",
  },
  acquirerLatencyMs: {
    env: 'CARDHOLD_ACQUIRER_LATENCY_MS',
    type: 'integer',
    default: 0,
    min: 0,
    max: 60_000,
    description:
      'Largest latency the test acquirer adds to each API request: a pseudo-random 0 to this many milliseconds, the same sequence for the same seed.',
  },
  acquirerLatencySeed: {
    env: 'CARDHOLD_ACQUIRER_LATENCY_SEED',
    type: 'integer',
    default: 1,
    min: 0,
    max: 4_294_967_295,
    description: "Seed of the test acquirer's latency sequence (CARDHOLD_ACQUIRER_LATENCY_MS).",
  },
  sealedKeyFile: {
    env: 'CARDHOLD_SEALED_KEY_FILE',
    type: 'path',
    description:
      'local-sealed: the sealed master key file written by `cardhold keys init`. Unset: <data dir>/keys/master.sealed.json.',
  },
  keysAutoUnseal: {
    env: 'CARDHOLD_KEYS_AUTO_UNSEAL',
    type: 'boolean',
    default: false,
    description:
      'local-sealed, DEVELOPMENT ONLY: initialise the sealed key on first start and unseal it from shares kept in <data dir>/keys; refused in production mode.',
  },
  pkcs11Library: {
    env: 'CARDHOLD_PKCS11_LIBRARY',
    type: 'path',
    default: '/usr/lib/softhsm/libsofthsm2.so',
    description: "pkcs11: the HSM vendor's PKCS#11 module.",
  },
  pkcs11TokenLabel: {
    env: 'CARDHOLD_PKCS11_TOKEN_LABEL',
    type: 'string',
    description: 'pkcs11: the label of the token holding the master key (or set CARDHOLD_PKCS11_SLOT).',
  },
  pkcs11Slot: {
    env: 'CARDHOLD_PKCS11_SLOT',
    type: 'integer',
    min: 0,
    max: 4_294_967_295,
    description: 'pkcs11: the slot id of the token, when no token label is set.',
  },
  pkcs11Pin: {
    env: 'CARDHOLD_PKCS11_PIN',
    type: 'string',
    secret: true,
    description: "pkcs11: the token's user PIN.",
  },
  pkcs11KeyLabel: {
    env: 'CARDHOLD_PKCS11_KEY_LABEL',
    type: 'string',
    default: 'cardhold-master',
    description:
      'pkcs11: the label of the master key objects; versions are told apart by CKA_ID, the highest wraps new keys.',
  },
  kmsKeyId: {
    env: 'CARDHOLD_KMS_KEY_ID',
    type: 'string',
    description: 'aws-kms: the key id or ARN (or alias/…) of the symmetric KMS key.',
  },
  kmsRegion: {
    env: 'CARDHOLD_KMS_REGION',
    type: 'string',
    description: 'aws-kms: the AWS region. Credentials come from the AWS SDK default chain.',
  },
  kmsEndpoint: {
    env: 'CARDHOLD_KMS_ENDPOINT',
    type: 'string',
    description: 'aws-kms: an endpoint override (a VPC endpoint, or a local stand-in in tests).',
  },
  webhookRetryBaseMs: {
    env: 'CARDHOLD_WEBHOOK_RETRY_BASE_MS',
    type: 'integer',
    default: 30_000,
    min: 1,
    max: 3_600_000,
    description:
      'Delay before the first retry of a failed webhook delivery; each further retry waits twice as long (with jitter), up to CARDHOLD_WEBHOOK_RETRY_CAP_MS.',
  },
  webhookRetryCapMs: {
    env: 'CARDHOLD_WEBHOOK_RETRY_CAP_MS',
    type: 'integer',
    default: 3_600_000,
    min: 1,
    max: 86_400_000,
    description: 'Longest delay between two attempts of a webhook delivery.',
  },
  webhookRetryHorizonMs: {
    env: 'CARDHOLD_WEBHOOK_RETRY_HORIZON_MS',
    type: 'integer',
    default: 86_400_000,
    min: 1,
    max: 604_800_000,
    description:
      'How long after its event a failing webhook delivery is retried; after that it is abandoned (a manual retry still sends it once).',
  },
  webhookPollIntervalMs: {
    env: 'CARDHOLD_WEBHOOK_POLL_INTERVAL_MS',
    type: 'integer',
    default: 1000,
    min: 10,
    max: 60_000,
    description: 'How often the api role looks for webhook deliveries that are due.',
  },
  webhookTimeoutMs: {
    env: 'CARDHOLD_WEBHOOK_TIMEOUT_MS',
    type: 'integer',
    default: 10_000,
    min: 100,
    max: 60_000,
    description:
      'Time limit of one webhook request, from connecting to the end of the response; longer counts as a failed attempt.',
  },
  // Key lifecycle (issue 6): cryptoperiods per purpose (PCI DSS 3.6.4, 3.7.4).
  cryptoperiodPanDays: {
    env: 'CARDHOLD_CRYPTOPERIOD_PAN_DAYS',
    type: 'integer',
    default: 365,
    min: 1,
    max: 3650,
    description:
      'Cryptoperiod of card-number (PAN) key-encrypting keys: `cardhold keys status` warns before it ends and fails after; rotate with `cardhold keys rotate`.',
  },
  cryptoperiodCvvDays: {
    env: 'CARDHOLD_CRYPTOPERIOD_CVV_DAYS',
    type: 'integer',
    default: 365,
    min: 1,
    max: 3650,
    description:
      'Cryptoperiod of CVV key-encrypting keys: `cardhold keys status` warns before it ends and fails after; rotate with `cardhold keys rotate`.',
  },
  cryptoperiodFingerprintDays: {
    env: 'CARDHOLD_CRYPTOPERIOD_FINGERPRINT_DAYS',
    type: 'integer',
    default: 365,
    min: 1,
    max: 3650,
    description:
      'Cryptoperiod of fingerprint (HMAC) keys: `cardhold keys status` warns before it ends and fails after; rotate with `cardhold keys rotate`.',
  },
  cryptoperiodAuditDays: {
    env: 'CARDHOLD_CRYPTOPERIOD_AUDIT_DAYS',
    type: 'integer',
    default: 365,
    min: 1,
    max: 3650,
    description:
      'Cryptoperiod of the audit trail hashing and checkpoint-signing keys: `cardhold keys status` warns before it ends and fails after; rotate with `cardhold keys rotate`.',
  },
  cryptoperiodWarnDays: {
    env: 'CARDHOLD_CRYPTOPERIOD_WARN_DAYS',
    type: 'integer',
    default: 30,
    min: 0,
    max: 365,
    description: 'How many days before a cryptoperiod ends `cardhold keys status` starts to warn.',
  },
  // Web (issue 10): the demo merchant's checkout page that `cardhold start` serves.
  demoPort: {
    env: 'CARDHOLD_DEMO_PORT',
    type: 'integer',
    default: 8446,
    min: 0,
    max: 65535,
    description:
      "HTTPS port of the demo merchant's checkout page, which `cardhold start` serves in development mode only (0 picks a free port).",
  },
  // Master key rotation (issue 6): the previous KMS keys, and the wait before an old version is retired.
  kmsPreviousKeyIds: {
    env: 'CARDHOLD_KMS_PREVIOUS_KEY_IDS',
    type: 'string',
    description:
      'aws-kms: comma-separated ids of earlier KMS keys, which only decrypt until `cardhold keys rewrap` has moved every wrapped key to CARDHOLD_KMS_KEY_ID (master key rotation).',
  },
  keyRetireGraceSeconds: {
    env: 'CARDHOLD_KEY_RETIRE_GRACE_SECONDS',
    type: 'integer',
    default: 60,
    min: 0,
    max: 86_400,
    description:
      'How long after a rotation an old key version (master or key-encrypting) may be retired, and how long `cardhold keys compromise` waits after rotating the active version: every process must have seen the rotation first. At least 60 in production mode.',
  },
  // Operator dashboard (issue 10, point 3), served by the api; its card-data calls go to the vault.
  dashboardOrigin: {
    env: 'CARDHOLD_DASHBOARD_ORIGIN',
    type: 'string',
    description:
      'Origin the operator dashboard is served from (the api as browsers reach it, e.g. https://api.example): the vault answers its token and key requests with CORS for this origin only. Defaults to the api in the same process.',
  },
  dashboardVaultUrl: {
    env: 'CARDHOLD_DASHBOARD_VAULT_URL',
    type: 'string',
    description:
      "The vault's URL as operators' browsers reach it, for the dashboard's token, reveal and key views. Defaults to CARDHOLD_VAULT_URL, then the vault in the same process.",
  },
  scanReportFile: {
    env: 'CARDHOLD_SCAN_REPORT_FILE',
    type: 'path',
    description:
      'A JSON report written by `cardhold scan --format json`, which the dashboard shows as the latest scan (GET /v1/admin/scan-report, audit:read). Unset: the dashboard says no report is configured.',
  },
} as const satisfies Record<string, SettingDefinition>;

export type SettingName = keyof typeof settings;
