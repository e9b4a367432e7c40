-- The audit trail (PCI DSS 10.2, 10.3): append-only, hash-chained records and signed checkpoints.
--
-- Records form several chains ("lanes") so that concurrent writers do not queue behind one chain head:
-- each record links to the previous record of its lane by hash, and (lane, lane_seq) is unique, so two
-- writers racing for one lane cannot both extend it. Checkpoints sign the head of every lane.

CREATE SCHEMA audit;

CREATE TABLE audit.records (
  seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  lane           smallint NOT NULL CHECK (lane BETWEEN 0 AND 1023),
  lane_seq       bigint NOT NULL CHECK (lane_seq > 0),
  occurred_at    timestamptz NOT NULL,
  actor_type     text NOT NULL CHECK (actor_type IN ('user', 'merchant_key', 'admin_token', 'service', 'anonymous')),
  actor_id       text NOT NULL,
  action         text NOT NULL,
  resource_type  text NOT NULL,
  resource_id    text NOT NULL,
  merchant_id    text,
  outcome        text NOT NULL CHECK (outcome IN ('success', 'failure')),
  reason         text,
  origin         text NOT NULL,
  user_agent     text,
  request_id     text NOT NULL,
  service        text NOT NULL,
  details        jsonb NOT NULL DEFAULT '{}',
  prev_hash      bytea NOT NULL CHECK (length(prev_hash) = 32),
  hash           bytea NOT NULL CHECK (length(hash) = 32),
  UNIQUE (lane, lane_seq)
);
-- Export and paging by time range. Records arrive (nearly) in time order, so a BRIN index serves the range
-- scans at almost no cost per insert and size; the append-only table never needs it rebuilt.
CREATE INDEX records_occurred ON audit.records USING brin (occurred_at);

-- Ed25519 keys that sign checkpoints: the private key is stored wrapped by the key provider, the public
-- key in the clear for verifiers.
CREATE TABLE audit.signing_keys (
  version              integer PRIMARY KEY CHECK (version > 0),
  public_key           bytea NOT NULL,
  wrapped_private_key  bytea NOT NULL,
  provider             text NOT NULL,
  environment          text NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now()
);

-- The key for keyed hashes of sensitive values in records (a presented credential, say): correlatable
-- within this deployment, useless to anyone without the key provider.
CREATE TABLE audit.hash_keys (
  version      integer PRIMARY KEY CHECK (version > 0),
  wrapped_key  bytea NOT NULL,
  provider     text NOT NULL,
  environment  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit.checkpoints (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  created_at     timestamptz NOT NULL,
  -- The signed statement, byte for byte: lane heads, record count, previous checkpoint's hash.
  statement      bytea NOT NULL,
  key_version    integer NOT NULL REFERENCES audit.signing_keys (version),
  signature      bytea NOT NULL
);

-- Privileges alone keep the runtime roles from changing history; the trigger also stops the owner and
-- anyone granted more by mistake. (Only a superuser disabling the trigger gets past it, and verify
-- catches what they then change.)
CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit trail is append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['records', 'checkpoints', 'signing_keys', 'hash_keys'] LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON audit.%I FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()', t || '_append_only', t);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON audit.%I FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()', t || '_no_truncate', t);
  END LOOP;
END $$;

-- Both runtime roles write records (the api records administrative actions and failed logins); only the
-- vault, which holds the key provider, signs checkpoints.
GRANT USAGE ON SCHEMA audit TO cardhold_vault_runtime, cardhold_api_runtime;
GRANT SELECT, INSERT ON audit.records TO cardhold_vault_runtime, cardhold_api_runtime;
GRANT SELECT, INSERT ON audit.hash_keys TO cardhold_vault_runtime, cardhold_api_runtime;
GRANT SELECT ON audit.checkpoints, audit.signing_keys TO cardhold_api_runtime;
GRANT SELECT, INSERT ON audit.checkpoints, audit.signing_keys TO cardhold_vault_runtime;
