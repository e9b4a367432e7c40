import { randomBytes } from 'node:crypto';
import { Secret as OtpSecret, TOTP } from 'otpauth';
import { Secret } from '../../shared/secret.ts';

/**
 * RFC 6238 TOTP as every authenticator app understands it: HMAC-SHA-1, 6 digits, 30-second steps. A
 * code from the step before or after the current one is accepted (clock drift), and never a code for a
 * step at or before the last one accepted (replay, RFC 6238 section 5.2).
 */
export const totpParameters = {
  issuer: 'cardhold',
  algorithm: 'SHA1',
  digits: 6,
  period: 30,
  window: 1,
  /** 160 bits, the HMAC-SHA-1 block-size recommendation of RFC 4226. */
  secretBytes: 20,
} as const;

/** A fresh TOTP secret. The caller seals it at once and zeroes the buffer when done. */
export function newTotpSecret(): Buffer {
  return randomBytes(totpParameters.secretBytes);
}

function totpFor(secret: Buffer, label = 'operator'): TOTP {
  return new TOTP({
    issuer: totpParameters.issuer,
    label,
    algorithm: totpParameters.algorithm,
    digits: totpParameters.digits,
    period: totpParameters.period,
    secret: new OtpSecret({ buffer: new Uint8Array(secret).buffer }),
  });
}

/** The `otpauth://totp/cardhold:<username>?secret=…` URI an authenticator app scans, shown once. */
export function provisioningUri(secret: Buffer, username: string): Secret<string> {
  return new Secret(totpFor(secret, username).toString());
}

/** The time step a moment falls in. */
export function totpStep(at: Date): number {
  return Math.floor(at.getTime() / 1000 / totpParameters.period);
}

export type TotpCheck =
  | { ok: true; step: number }
  | { ok: false; reason: 'invalid_totp' | 'totp_replayed'; step?: number };

/**
 * Checks `code` at time `at` against `secret`. The comparison is the library's, in constant time. A
 * correct code for a step at or before `lastStep` is a replay. The caller must still record the
 * returned step atomically (only if it is greater than the stored one), so that two concurrent uses of
 * one code cannot both pass.
 */
export function checkTotp(secret: Buffer, code: string, at: Date, lastStep: number | null): TotpCheck {
  const token = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return { ok: false, reason: 'invalid_totp' };
  const delta = totpFor(secret).validate({
    token,
    timestamp: at.getTime(),
    window: totpParameters.window,
  });
  if (delta === null) return { ok: false, reason: 'invalid_totp' };
  const step = totpStep(at) + delta;
  if (lastStep !== null && step <= lastStep) return { ok: false, reason: 'totp_replayed', step };
  return { ok: true, step };
}

/** The code for `at`: what an authenticator would show (tests and tools play the authenticator). */
export function totpCode(secret: Buffer, at: Date): string {
  return totpFor(secret).generate({ timestamp: at.getTime() });
}

/** The secret inside a provisioning URI, as an authenticator reads it. */
export function secretFromUri(uri: string): Buffer {
  const value = new URL(uri).searchParams.get('secret');
  if (!value) throw new Error('no secret in the provisioning URI');
  return Buffer.from(OtpSecret.fromBase32(value).bytes);
}
