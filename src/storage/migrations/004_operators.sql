-- Operator accounts (issue 4): the people who use the admin API and, later, the dashboard (PCI DSS 8).
--
-- Passwords are argon2id hashes; TOTP secrets are AES-256-GCM ciphertext under a key the key provider
-- wraps; session JWTs are signed with Ed25519 keys whose private halves are stored only wrapped. Every
-- time stamp is written by the service from its own clock, so that lockout and idle timeout are
-- decided in one place (and tests can move the clock).

CREATE TABLE identity.operators (
  id                        text PRIMARY KEY CHECK (id ~ '^opr_[0-9A-Za-z]{22}$'),
  username                  text NOT NULL UNIQUE
                            CHECK (username = lower(username) AND username ~ '^[a-z][a-z0-9._-]{2,63}$'),
  -- Role names from src/auth/permissions.ts that a person may hold.
  roles                     text[] NOT NULL CHECK (
                              cardinality(roles) BETWEEN 1 AND 3
                              AND roles <@ ARRAY['operator-viewer', 'operator-support', 'operator-reveal', 'security-admin']::text[]),
  -- An operator confined to one merchant; platform-wide staff have none. Security administrators
  -- (keys, the audit trail, users) are never confined to a merchant.
  merchant_id               text REFERENCES identity.merchants (id),
  password_hash             text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
  password_changed_at       timestamptz NOT NULL,
  -- Set by an administrator's create or reset (PCI DSS 8.3.5); cleared by the operator's own change.
  password_change_required  boolean NOT NULL DEFAULT false,
  failed_attempts           integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
  locked_until              timestamptz,
  -- AES-256-GCM (iv ‖ tag ‖ ciphertext) of the TOTP secret under identity.operator_totp_keys.
  totp_secret               bytea,
  totp_key_version          integer,
  totp_enrolled_at          timestamptz,
  -- The last TOTP time step accepted: a code for this step or an earlier one is a replay.
  last_totp_step            bigint,
  last_login_at             timestamptz,
  created_at                timestamptz NOT NULL,
  disabled_at               timestamptz,
  CHECK (merchant_id IS NULL OR NOT ('security-admin' = ANY (roles))),
  CHECK ((totp_secret IS NULL) = (totp_enrolled_at IS NULL)),
  CHECK ((totp_secret IS NULL) = (totp_key_version IS NULL))
);

-- The previous password hashes (the current one included), newest four kept (PCI DSS 8.3.7).
CREATE TABLE identity.password_history (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  operator_id    text NOT NULL REFERENCES identity.operators (id),
  password_hash  text NOT NULL,
  created_at     timestamptz NOT NULL
);
CREATE INDEX password_history_operator ON identity.password_history (operator_id, id DESC);

-- The key that encrypts TOTP secrets, wrapped by the key provider (like audit.hash_keys).
CREATE TABLE identity.operator_totp_keys (
  version      integer PRIMARY KEY CHECK (version > 0),
  wrapped_key  bytea NOT NULL,
  provider     text NOT NULL,
  environment  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- Ed25519 keys that sign operator session JWTs. Public keys are published as a JWKS; a retired key no
-- longer verifies anything.
CREATE TABLE identity.session_keys (
  kid                  text PRIMARY KEY CHECK (kid ~ '^osk_[0-9A-Za-z]{22}$'),
  -- Creation order (time stamps can tie): the newest active key signs.
  seq                  bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  public_key           bytea NOT NULL,
  wrapped_private_key  bytea NOT NULL,
  provider             text NOT NULL,
  environment          text NOT NULL,
  created_at           timestamptz NOT NULL,
  retired_at           timestamptz
);

-- The second step of a login: a single-use, short-lived challenge that the password step hands out
-- (only its SHA-256 is stored). At first login it carries the TOTP secret being enrolled, sealed.
CREATE TABLE identity.operator_challenges (
  id                   text PRIMARY KEY,
  operator_id          text NOT NULL REFERENCES identity.operators (id),
  token_hash           bytea NOT NULL UNIQUE,
  pending_totp_secret  bytea,
  totp_key_version     integer,
  created_at           timestamptz NOT NULL,
  expires_at           timestamptz NOT NULL,
  consumed_at          timestamptz
);
CREATE INDEX operator_challenges_operator ON identity.operator_challenges (operator_id);

-- Server-side session state, shared by every replica: idle timeout and revocation.
CREATE TABLE identity.operator_sessions (
  sid           text PRIMARY KEY CHECK (sid ~ '^sid_[0-9A-Za-z]{22}$'),
  operator_id   text NOT NULL REFERENCES identity.operators (id),
  amr           text[] NOT NULL,
  mfa_at        timestamptz,
  created_at    timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL,
  revoked_at    timestamptz
);
CREATE INDEX operator_sessions_operator ON identity.operator_sessions (operator_id) WHERE revoked_at IS NULL;

-- The api role runs operator accounts. It may change only the columns that change after creation.
GRANT SELECT, INSERT ON identity.operators TO cardhold_api_runtime;
GRANT UPDATE (password_hash, password_changed_at, password_change_required, failed_attempts, locked_until,
  totp_secret, totp_key_version, totp_enrolled_at, last_totp_step, last_login_at, disabled_at)
  ON identity.operators TO cardhold_api_runtime;
GRANT SELECT, INSERT, DELETE ON identity.password_history TO cardhold_api_runtime;
GRANT SELECT, INSERT ON identity.operator_totp_keys TO cardhold_api_runtime;
GRANT SELECT, INSERT ON identity.session_keys TO cardhold_api_runtime;
GRANT UPDATE (retired_at) ON identity.session_keys TO cardhold_api_runtime;
GRANT SELECT, INSERT, DELETE ON identity.operator_challenges TO cardhold_api_runtime;
GRANT UPDATE (consumed_at, pending_totp_secret) ON identity.operator_challenges TO cardhold_api_runtime;
GRANT SELECT, INSERT ON identity.operator_sessions TO cardhold_api_runtime;
GRANT UPDATE (last_seen_at, revoked_at, mfa_at) ON identity.operator_sessions TO cardhold_api_runtime;
