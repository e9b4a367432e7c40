-- Group roles: runtime logins are made members of these; they own nothing and cannot change schema.
DO $$ BEGIN CREATE ROLE cardhold_vault_runtime NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE cardhold_api_runtime NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;

-- identity: merchants and their API keys. Written by the api role, read by the vault to authenticate.
CREATE SCHEMA identity;

CREATE TABLE identity.merchants (
  id          text PRIMARY KEY,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  environment text NOT NULL CHECK (environment IN ('test', 'live')),
  is_demo     boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identity.api_keys (
  id            text PRIMARY KEY,
  merchant_id   text NOT NULL REFERENCES identity.merchants (id),
  kind          text NOT NULL CHECK (kind IN ('secret', 'publishable')),
  -- SHA-256 of the 256-bit random key: the key itself is shown once and never stored.
  secret_hash   bytea NOT NULL UNIQUE,
  display       text NOT NULL,
  scopes        text[] NOT NULL,
  label         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz
);
CREATE INDEX api_keys_merchant ON identity.api_keys (merchant_id, created_at);

-- vault: the cardholder data environment's tables.
CREATE SCHEMA vault;

CREATE TABLE vault.key_encryption_keys (
  merchant_id  text NOT NULL,
  purpose      text NOT NULL CHECK (purpose IN ('pan', 'cvv', 'fingerprint')),
  version      integer NOT NULL CHECK (version > 0),
  wrapped_key  bytea NOT NULL,
  provider     text NOT NULL,
  environment  text NOT NULL,
  state        text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'decrypt_only', 'retired')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (merchant_id, purpose, version)
);

CREATE TABLE vault.tokens (
  id             text PRIMARY KEY,
  merchant_id    text NOT NULL,
  alias          text,
  -- HMAC-SHA-256 of the PAN under the merchant's fingerprint key (PCI DSS 3.5.1.1).
  fingerprint    bytea NOT NULL,
  -- AES-256-GCM of the PAN and holder name under a per-record data key; AAD binds merchant, token, key version.
  ciphertext     bytea NOT NULL,
  wrapped_dek    bytea NOT NULL,
  kek_version    integer NOT NULL,
  brand          text NOT NULL,
  bin            text NOT NULL CHECK (bin ~ '^[0-9]{6,8}$'),
  last4          text NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
  pan_length     smallint NOT NULL,
  exp_month      smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
  exp_year       smallint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz,
  UNIQUE (merchant_id, alias)
);
CREATE INDEX tokens_merchant_created ON vault.tokens (merchant_id, created_at DESC, id DESC);
CREATE INDEX tokens_merchant_fingerprint ON vault.tokens (merchant_id, fingerprint);
CREATE INDEX tokens_merchant_last4 ON vault.tokens (merchant_id, last4, created_at DESC, id DESC);
CREATE INDEX tokens_expires ON vault.tokens (expires_at) WHERE expires_at IS NOT NULL;

-- Least privilege: each runtime role gets exactly what its code does, nothing it could use to alter history.
GRANT USAGE ON SCHEMA identity TO cardhold_vault_runtime, cardhold_api_runtime;
GRANT SELECT ON identity.merchants, identity.api_keys TO cardhold_vault_runtime;
GRANT UPDATE (last_used_at) ON identity.api_keys TO cardhold_vault_runtime;
GRANT SELECT, INSERT ON identity.merchants TO cardhold_api_runtime;
GRANT SELECT, INSERT ON identity.api_keys TO cardhold_api_runtime;
GRANT UPDATE (revoked_at, last_used_at) ON identity.api_keys TO cardhold_api_runtime;

GRANT USAGE ON SCHEMA vault TO cardhold_vault_runtime;
GRANT SELECT, INSERT, DELETE ON vault.tokens TO cardhold_vault_runtime;
GRANT SELECT, INSERT ON vault.key_encryption_keys TO cardhold_vault_runtime;
