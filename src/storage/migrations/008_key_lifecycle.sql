-- Key lifecycle (issue 6): rotation, rewrap, retirement, re-fingerprinting and incident actions.

-- When each key-encrypting key version stopped encrypting (rotation), was declared compromised, and was
-- retired. A retired version's wrapped key is destroyed (empty): nothing can unwrap it again.
ALTER TABLE vault.key_encryption_keys
  ADD COLUMN rotated_at      timestamptz,
  ADD COLUMN compromised_at  timestamptz,
  ADD COLUMN retired_at      timestamptz,
  ADD CONSTRAINT kek_retired_is_destroyed CHECK ((state = 'retired') = (length(wrapped_key) = 0));
-- At most one version of a merchant's purpose encrypts new data; concurrent rotations cannot both win.
CREATE UNIQUE INDEX kek_one_active ON vault.key_encryption_keys (merchant_id, purpose) WHERE state = 'active';

-- The rewrap job moves a record's data key to the newest key version without touching its ciphertext,
-- whose AAD keeps naming the version it was sealed under: `aad_version` is that version, fixed for life,
-- while `kek_version` names the version that wraps the data key now.
-- `fingerprint_version` names the fingerprint key the fingerprint was computed with (re-fingerprinting).
ALTER TABLE vault.tokens
  ADD COLUMN aad_version          integer,
  ADD COLUMN fingerprint_version  integer;
UPDATE vault.tokens SET aad_version = kek_version, fingerprint_version = 1;
ALTER TABLE vault.tokens
  ALTER COLUMN aad_version SET NOT NULL,
  ALTER COLUMN fingerprint_version SET NOT NULL;
-- Finds the records still under an old version (rewrap batches, reference counts before retirement).
CREATE INDEX tokens_merchant_kek_version ON vault.tokens (merchant_id, kek_version, id);

-- Progress of the resumable jobs (rewrap, re-fingerprint): one running job per kind and merchant; each
-- batch commits its rows together with the cursor, so a killed job resumes where the last batch ended.
CREATE TABLE vault.key_jobs (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind            text NOT NULL CHECK (kind IN ('rewrap', 'refingerprint')),
  merchant_id     text NOT NULL,
  target_version  integer NOT NULL CHECK (target_version > 0),
  state           text NOT NULL CHECK (state IN ('running', 'finished')),
  cursor          text NOT NULL DEFAULT '',
  pass            integer NOT NULL DEFAULT 1,
  done            bigint NOT NULL DEFAULT 0,
  total           bigint NOT NULL,
  started_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
);
CREATE UNIQUE INDEX key_jobs_one_running ON vault.key_jobs (kind, merchant_id) WHERE state = 'running';

-- Incident response: a frozen merchant's card data is served to nobody until it is unfrozen.
ALTER TABLE identity.merchants ADD COLUMN frozen_at timestamptz;

-- The vault (which holds the key provider) may run the lifecycle itself: move data keys and
-- fingerprints, change a key version's state and destroy its material, and keep job progress.
GRANT UPDATE (wrapped_dek, kek_version, fingerprint, fingerprint_version) ON vault.tokens TO cardhold_vault_runtime;
GRANT UPDATE (state, wrapped_key, rotated_at, compromised_at, retired_at)
  ON vault.key_encryption_keys TO cardhold_vault_runtime;
GRANT SELECT, INSERT, UPDATE ON vault.key_jobs TO cardhold_vault_runtime;
GRANT UPDATE (frozen_at) ON identity.merchants TO cardhold_api_runtime;
