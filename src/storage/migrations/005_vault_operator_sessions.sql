-- Operator sessions on the vault (issue 4): people with operator accounts reach card-data routes.
--
-- The vault verifies the session JWTs the api issues with the signing keys' public halves, then checks
-- and touches the server-side session with the api's own query (src/auth/operators/session-state.ts).
-- It gets exactly the columns that needs, and nothing it could sign a session, sign in or lift a lockout
-- with: no wrapped private key, no password hash, no TOTP secret, no challenge, no write to a key.

-- Public keys that verify: SessionPublicKeys.reload, and the retired-key check of the session query.
GRANT SELECT (kid, seq, public_key, environment, retired_at) ON identity.session_keys TO cardhold_vault_runtime;

-- The account as it is now: roles, merchant, the change-required flag, and whether it is disabled.
GRANT SELECT (id, roles, merchant_id, password_change_required, disabled_at)
  ON identity.operators TO cardhold_vault_runtime;

-- The session: idle timeout, 12-hour limit, revocation, factors; the vault extends only the idle clock.
GRANT SELECT (sid, operator_id, amr, mfa_at, created_at, last_seen_at, revoked_at)
  ON identity.operator_sessions TO cardhold_vault_runtime;
GRANT UPDATE (last_seen_at) ON identity.operator_sessions TO cardhold_vault_runtime;
