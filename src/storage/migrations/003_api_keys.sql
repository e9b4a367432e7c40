-- Publishable keys and key rotation (issue 4).
--
-- A publishable key (pk_…) can only tokenize into its own merchant, and only from the browser origins
-- listed here. Rotation issues a successor and lets the old key live on until the end of the overlap
-- (its expires_at), so clients can switch without downtime.
ALTER TABLE identity.api_keys ADD COLUMN allowed_origins text[] NOT NULL DEFAULT '{}';
ALTER TABLE identity.api_keys ADD COLUMN rotated_to text REFERENCES identity.api_keys (id);
ALTER TABLE identity.api_keys ADD CONSTRAINT api_keys_publishable_origins
  CHECK (kind = 'secret' OR cardinality(allowed_origins) > 0);

GRANT UPDATE (expires_at, rotated_to) ON identity.api_keys TO cardhold_api_runtime;
