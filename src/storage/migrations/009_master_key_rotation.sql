-- Master key rotation (issue 6 point 4): every key stored "wrapped by the key provider" records which
-- master key version wrapped it, so that the master rewrap job moves only what is still under an old
-- version (resumable and idempotent: a row's own column is its progress), and an old master version is
-- destroyed only when nothing names it any more. NULL: wrapped before this migration, version unknown
-- until the job has moved it.
ALTER TABLE vault.key_encryption_keys ADD COLUMN master_version text;
ALTER TABLE audit.hash_keys ADD COLUMN master_version text;
ALTER TABLE audit.signing_keys ADD COLUMN master_version text;
ALTER TABLE identity.session_keys ADD COLUMN master_version text;
ALTER TABLE identity.operator_totp_keys ADD COLUMN master_version text;
ALTER TABLE webhooks.secret_keys ADD COLUMN master_version text;

-- The master key versions of each provider and their states: active (wraps), decrypt_only (after a
-- rotation, until the job has moved everything), retired (destroyed in the provider). `rotated_at`
-- starts the grace during which a process that has not yet seen the rotation may still wrap under it.
CREATE TABLE vault.master_key_versions (
  provider     text NOT NULL,
  version      text NOT NULL,
  environment  text NOT NULL,
  state        text NOT NULL CHECK (state IN ('active', 'decrypt_only', 'retired')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  rotated_at   timestamptz,
  retired_at   timestamptz,
  PRIMARY KEY (provider, version)
);
CREATE UNIQUE INDEX master_key_one_active ON vault.master_key_versions (provider) WHERE state = 'active';

-- The audit key tables stay append-only for everything that is history (version, public key, dates);
-- only the wrapping of a key's material may change, when the master key beneath it is rotated. The
-- key itself, and so every hash and signature made with it, stays the same.
CREATE FUNCTION audit.refuse_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND (to_jsonb(NEW) - 'wrapped_key' - 'wrapped_private_key' - 'master_version')
       = (to_jsonb(OLD) - 'wrapped_key' - 'wrapped_private_key' - 'master_version') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'the audit trail is append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER signing_keys_append_only ON audit.signing_keys;
DROP TRIGGER hash_keys_append_only ON audit.hash_keys;
CREATE TRIGGER signing_keys_append_only BEFORE UPDATE OR DELETE ON audit.signing_keys
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_key_change();
CREATE TRIGGER hash_keys_append_only BEFORE UPDATE OR DELETE ON audit.hash_keys
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_key_change();

-- Writers record the master version with each key they create (inserts only; the rewrap job runs with
-- the administrative connection).
GRANT SELECT ON vault.master_key_versions TO cardhold_vault_runtime;
