import type { Sql } from 'postgres';
import type { AuditTrail } from '../../audit/audit-trail.ts';
import type { Origin } from '../../audit/events.ts';
import { authenticateSession, type OperatorPrincipal } from './session-state.ts';
import { SessionPublicKeys } from './session-tokens.ts';

/**
 * On the vault: when a token names a key the vault has not loaded, and a read of the key set in the last
 * 30 s did not find one, it is refused without reading again.
 */
export const VAULT_UNKNOWN_KID_RELOAD_MS = 30_000;

export interface SessionVerifierOptions {
  /**
   * The vault role's pool (cardhold_vault_runtime): it may read the public session keys and the session
   * and account columns the check needs, and update a session's `last_seen_at`; nothing else.
   */
  sql: Sql;
  /** The vault's audit trail, for refusals. */
  trail: AuditTrail;
  /** The key environment whose signing keys are trusted (the key provider's, e.g. `development`). */
  environment: string;
  /** The clock for token lifetimes and the idle timeout; tests move it. */
  now?: () => Date;
}

/**
 * Operator sessions on the vault, with least privilege: it verifies the session JWTs the api issues
 * against their public keys only (no key provider, no private key, no write to any key table), then
 * checks and touches the server-side session with the api's own query (`touchSession`), so the idle
 * timeout, 12-hour limit, revocation, disabled accounts and retired keys apply here exactly as there.
 * A key rotated on the api is picked up at the first token that names it.
 */
export class SessionVerifier {
  readonly #options: SessionVerifierOptions;
  readonly #now: () => Date;
  readonly #keys: SessionPublicKeys;

  private constructor(options: SessionVerifierOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    this.#keys = new SessionPublicKeys(options.sql, options.environment, VAULT_UNKNOWN_KID_RELOAD_MS);
  }

  /** Loads the public keys that verify; fails if the vault role cannot read them (missing grants). */
  static async open(options: SessionVerifierOptions): Promise<SessionVerifier> {
    const verifier = new SessionVerifier(options);
    await verifier.reload();
    return verifier;
  }

  /** Reads the public keys again. */
  reload(): Promise<void> {
    return this.#keys.reload();
  }

  /** The same principal `Operators.authenticate` gives on the api, or `session_invalid`, recorded. */
  authenticate(token: string, origin: Origin): Promise<OperatorPrincipal> {
    const { sql, trail } = this.#options;
    return authenticateSession(
      { sql, trail, now: this.#now, verify: (t) => this.#keys.verify(t, this.#now()) },
      token,
      origin,
    );
  }
}
