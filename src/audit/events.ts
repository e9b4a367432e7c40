/**
 * What an audit record says (PCI DSS 10.2.2): who, what, when, on what, for which merchant, with what
 * outcome, from where, in which request. Actions are a closed list so that reports and alerts can rely
 * on them; the PCI 10.2.1.x requirement each serves is noted beside it.
 */
export const auditActions = {
  // 10.2.1.1: every access to cardholder data.
  'token.create': 'A card was tokenized',
  'token.read': 'A token was read (masked)',
  'token.reveal': 'A full card number was revealed',
  'token.search': 'Tokens were listed or searched',
  'token.delete': 'A token was deleted (crypto-shredded)',
  'cvv.create': 'A CVV slot was created',
  'cvv.read': 'A CVV slot was inspected',
  'cvv.use': 'A CVV was used',
  'cvv.destroy': 'A CVV slot was destroyed',
  'token.forward': 'A card was forwarded to an allow-listed processor',
  // Every forward is on record, card data or not (a capture, void, refund or status query).
  'processor.forward': 'A request without card data was forwarded to an allow-listed processor',
  // 10.2.1.2: administrative actions. 10.2.1.7: creation and deletion of system-level objects.
  'merchant.create': 'A merchant was created',
  'merchant.read': 'Merchants were read',
  'key.create': 'A key-encrypting key was created',
  'audit_key.create': 'An audit signing or hashing key was created',
  // 10.2.1.5: changes to identification and authentication credentials.
  'api_key.create': 'An API key was issued',
  'api_key.revoke': 'An API key was revoked',
  'api_key.rotate': 'An API key was rotated (successor issued, overlap set)',
  'api_key.read': 'API keys were listed',
  // Operator accounts (PCI DSS 8): 10.2.1.5 credential changes, 10.2.1.2 administrative actions.
  'operator.create': 'An operator account was created',
  'operator.read': 'An operator account was read',
  'operator.login': 'An operator logged in (password and TOTP)',
  'operator.logout': 'An operator session was ended',
  'operator.password_change': 'An operator password was changed or reset',
  'operator.mfa_enrol': 'An operator enrolled a TOTP authenticator',
  'operator.mfa_reset': 'An operator’s TOTP authenticator was removed by an administrator',
  'operator.step_up': 'An operator re-verified TOTP within a session',
  'operator.lock': 'An operator account was locked after repeated failures',
  'operator.unlock': 'An operator account was unlocked by an administrator',
  'operator.disable': 'An operator account was disabled',
  // 10.2.1.7: keys that protect operator credentials and sign their sessions.
  'operator_key.create': 'A session-signing or TOTP-encryption key was created',
  'operator_key.retire': 'A session-signing key was retired',
  // 10.2.1.3: access to the audit trail.
  'audit.read': 'Audit records were read or exported',
  'audit.verify': 'The audit trail was verified',
  // 10.2.1.4: invalid logical access attempts.
  'auth.failure': 'A credential was refused',
  'access.denied': 'A valid credential lacked the permission',
  // 10.2.1.6: initialization, starting and stopping of audit logging.
  'audit.initialize': 'The audit trail was initialized',
  'audit.start': 'Audit logging started',
  'audit.stop': 'Audit logging stopped',
  // 10.2.1.2 and PCI DSS 3.6.1.2, 3.7.6: custodians' shares (never the share itself) and the seal state.
  'key.unseal_share': 'A custodian submitted an unseal share',
  'key.unsealed': 'The key provider was unsealed',
  'key.sealed': 'The key provider was sealed',
  // Webhooks: 10.2.1.2 administrative actions, 10.2.1.5 signing-secret changes, 10.2.1.7 the key
  // that encrypts signing secrets.
  'webhook_endpoint.create': 'A webhook endpoint was created (with its signing secret)',
  'webhook_endpoint.delete': 'A webhook endpoint was deleted',
  'webhook_endpoint.rotate_secret': 'A webhook signing secret was rotated (overlap set)',
  'webhook_delivery.retry': 'A webhook delivery was sent again by hand',
  'webhook_key.create': 'The key that encrypts webhook signing secrets was created',
  // Key lifecycle (PCI DSS 3.6.1, 3.7.4, 3.7.5): 10.2.1.2 administrative actions, 10.2.1.7 keys made and destroyed.
  'key.rotate': 'A new key version was created; the previous one became decrypt-only',
  'key.rewrap_start': 'A job moving data keys (or fingerprints) to the newest key version started',
  'key.rewrap_finish': 'A job moving data keys (or fingerprints) to the newest key version finished',
  'key.retire': 'A key version that nothing references was retired and its material destroyed',
  'key.compromise': 'A key version was declared compromised',
  'key.destroy': 'A compromised key version was destroyed after everything under it moved',
  'key.inventory': 'The key and certificate inventory or key status was read',
  'merchant.freeze': 'A merchant was frozen: its card data is served to nobody',
  'merchant.unfreeze': 'A merchant was unfrozen',
  // Operator dashboard (issue 10): 10.2.1.3-style evidence reads.
  'scan_report.read': 'The latest compliance scan report was read',
} as const;

export type AuditAction = keyof typeof auditActions;

export type ActorType = 'user' | 'merchant_key' | 'admin_token' | 'service' | 'anonymous';

export interface Actor {
  type: ActorType;
  id: string;
}

/** Where a request came from, or which host and process acted on its own. */
export interface Origin {
  origin: string;
  userAgent: string | null;
  requestId: string;
}

export type DetailValue = string | number | boolean | null;

export interface AuditEvent {
  action: AuditAction;
  actor: Actor;
  resource: { type: string; id: string };
  merchantId: string | null;
  outcome: 'success' | 'failure';
  /** Why it failed: an error code, never input values. */
  reason?: string | null;
  origin: Origin;
  /** Small, non-sensitive facts (counts, scopes, a keyed hash); never card data or secrets. */
  details?: Record<string, DetailValue>;
}

/** An event as stored: placed in a lane, time-stamped and chained. */
export interface AuditRecord {
  seq?: bigint | string;
  lane: number;
  laneSeq: bigint;
  occurredAt: Date;
  actorType: ActorType;
  actorId: string;
  action: string;
  resourceType: string;
  resourceId: string;
  merchantId: string | null;
  outcome: 'success' | 'failure';
  reason: string | null;
  origin: string;
  userAgent: string | null;
  requestId: string;
  service: string;
  details: Record<string, DetailValue>;
  prevHash: Buffer;
  hash: Buffer;
}

/** Who is acting, for which merchant, from where: what every card-data operation is given. */
export interface AccessContext {
  merchantId: string;
  actor: Actor;
  origin: Origin;
}

/** An event by `who` on `resource`: a success, or a failure whose reason is an error code. */
export function accessEvent(
  who: { actor: Actor; origin: Origin },
  action: AuditAction,
  resource: { type: string; id: string },
  merchantId: string | null,
  options: { failure?: string | undefined; details?: Record<string, DetailValue> | undefined } = {},
): AuditEvent {
  return {
    action,
    actor: who.actor,
    resource,
    merchantId,
    outcome: options.failure ? 'failure' : 'success',
    reason: options.failure ?? null,
    origin: who.origin,
    ...(options.details ? { details: options.details } : {}),
  };
}
