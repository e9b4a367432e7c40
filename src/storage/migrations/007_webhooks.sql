-- Webhooks to merchants from a transactional outbox (issue 5, point 6).
--
-- An event row is written in the same transaction as the business change it reports, together with one
-- delivery per matching endpoint, so an event exists if and only if the change committed. The api role's
-- dispatcher claims due deliveries with FOR UPDATE SKIP LOCKED (safe with several replicas), POSTs the
-- payload signed with the endpoint's secrets and records every attempt. Responses' bodies are never
-- stored; only their status code and a short error code.
CREATE SCHEMA webhooks;

CREATE TABLE webhooks.endpoints (
  id              text PRIMARY KEY CHECK (id ~ '^we_[0-9A-Za-z]{22}$'),
  merchant_id     text NOT NULL REFERENCES identity.merchants (id),
  url             text NOT NULL CHECK (length(url) BETWEEN 10 AND 2048),
  -- Event types sent to this endpoint; '*' is every type.
  enabled_events  text[] NOT NULL CHECK (cardinality(enabled_events) BETWEEN 1 AND 100),
  description     text CHECK (description IS NULL OR length(description) <= 500),
  created_at      timestamptz NOT NULL,
  -- Set by DELETE: the endpoint stops receiving and is no longer shown; its delivery log stays.
  disabled_at     timestamptz
);
CREATE INDEX endpoints_merchant ON webhooks.endpoints (merchant_id, created_at DESC, id DESC);

-- The key that encrypts endpoint secrets, wrapped by the key provider (like identity.operator_totp_keys).
-- A signing secret must be usable to compute HMACs, so it cannot be hashed like an API key.
CREATE TABLE webhooks.secret_keys (
  version      integer PRIMARY KEY CHECK (version > 0),
  wrapped_key  bytea NOT NULL,
  provider     text NOT NULL,
  environment  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- Signing secrets: AES-256-GCM (iv ‖ tag ‖ ciphertext) under webhooks.secret_keys, the AAD binding the
-- endpoint and the row. The current secret has no expiry; after a rotation the previous one keeps
-- signing until expires_at. Expired secrets are deleted at the next rotation or with the endpoint.
CREATE TABLE webhooks.endpoint_secrets (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  endpoint_id    text NOT NULL REFERENCES webhooks.endpoints (id),
  sealed_secret  bytea NOT NULL,
  key_version    integer NOT NULL,
  created_at     timestamptz NOT NULL,
  expires_at     timestamptz
);
CREATE UNIQUE INDEX endpoint_secrets_one_current ON webhooks.endpoint_secrets (endpoint_id)
  WHERE expires_at IS NULL;

-- The outbox. payload is the whole Stripe-like event ({id, object, type, created, livemode, data}).
CREATE TABLE webhooks.events (
  id           text PRIMARY KEY CHECK (id ~ '^evt_[0-9A-Za-z]{22}$'),
  merchant_id  text NOT NULL REFERENCES identity.merchants (id),
  type         text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' AND length(type) <= 100),
  payload      jsonb NOT NULL,
  created_at   timestamptz NOT NULL
);
CREATE INDEX events_merchant ON webhooks.events (merchant_id, created_at DESC, id DESC);

-- One event for one endpoint. pending: not tried yet; failed: the last attempt failed and another is
-- scheduled; succeeded; abandoned: still failing when the retry horizon ended, or the endpoint was deleted.
CREATE TABLE webhooks.deliveries (
  id                text PRIMARY KEY CHECK (id ~ '^whd_[0-9A-Za-z]{22}$'),
  event_id          text NOT NULL REFERENCES webhooks.events (id),
  endpoint_id       text NOT NULL REFERENCES webhooks.endpoints (id),
  merchant_id       text NOT NULL REFERENCES identity.merchants (id),
  status            text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'abandoned')),
  attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  -- When the dispatcher may next claim it; a claim moves it forward by a lease, so a replica that dies
  -- mid-attempt leaves it to another. NULL once succeeded or abandoned.
  next_attempt_at   timestamptz,
  last_attempt_at   timestamptz,
  last_status_code  smallint,
  -- A short code (http_500, timeout, connection_refused, …), never a response body.
  last_error        text CHECK (last_error ~ '^[a-z0-9_]{1,40}$'),
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  UNIQUE (event_id, endpoint_id),
  CHECK ((next_attempt_at IS NULL) = (status IN ('succeeded', 'abandoned')))
);
CREATE INDEX deliveries_due ON webhooks.deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_endpoint ON webhooks.deliveries (endpoint_id, created_at DESC, id DESC);

-- The delivery log: one row per HTTP attempt.
CREATE TABLE webhooks.delivery_attempts (
  delivery_id  text NOT NULL REFERENCES webhooks.deliveries (id),
  attempt      integer NOT NULL CHECK (attempt > 0),
  merchant_id  text NOT NULL REFERENCES identity.merchants (id),
  started_at   timestamptz NOT NULL,
  duration_ms  integer NOT NULL CHECK (duration_ms >= 0),
  status_code  smallint,
  error        text CHECK (error ~ '^[a-z0-9_]{1,40}$'),
  outcome      text NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
  PRIMARY KEY (delivery_id, attempt)
);

-- The api role runs webhooks; it may change only the columns that change after creation.
GRANT USAGE ON SCHEMA webhooks TO cardhold_api_runtime;
GRANT SELECT, INSERT ON webhooks.endpoints TO cardhold_api_runtime;
GRANT UPDATE (disabled_at) ON webhooks.endpoints TO cardhold_api_runtime;
GRANT SELECT, INSERT ON webhooks.secret_keys TO cardhold_api_runtime;
GRANT SELECT, INSERT, DELETE ON webhooks.endpoint_secrets TO cardhold_api_runtime;
GRANT UPDATE (expires_at) ON webhooks.endpoint_secrets TO cardhold_api_runtime;
GRANT SELECT, INSERT ON webhooks.events TO cardhold_api_runtime;
GRANT SELECT, INSERT ON webhooks.deliveries TO cardhold_api_runtime;
GRANT UPDATE (status, attempts, next_attempt_at, last_attempt_at, last_status_code, last_error, updated_at)
  ON webhooks.deliveries TO cardhold_api_runtime;
GRANT SELECT, INSERT ON webhooks.delivery_attempts TO cardhold_api_runtime;
