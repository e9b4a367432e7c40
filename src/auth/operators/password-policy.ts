import { CardholdError } from '../../shared/errors.ts';

/** PCI DSS 8.3.6: at least 12 characters, letters and digits. The upper bound keeps hashing bounded. */
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;
/** PCI DSS 8.3.7: a new password differs from the last four. */
export const PASSWORD_HISTORY = 4;

const USERNAME = /^[a-z][a-z0-9._-]{2,63}$/;

/**
 * One form for every password: Unicode NFC, so that the same password typed on two keyboards (a
 * precomposed "é" or "e" and a combining accent) hashes the same. Applied before checking and hashing.
 */
export function normalizePassword(password: string): string {
  return password.normalize('NFC');
}

/** Usernames are case-insensitive: stored and compared lower-case. */
export function normalizeUsername(username: string): string {
  return username.trim().toLowerCase();
}

/** Whether a (normalized) username is well-formed. */
export const isValidUsername = (normalized: string): boolean => USERNAME.test(normalized);

/** A well-formed username, lower-cased; `username_invalid` otherwise (never echoing the value). */
export function checkUsername(username: string, field = 'username'): string {
  const normalized = normalizeUsername(username);
  if (!USERNAME.test(normalized)) throw new CardholdError('username_invalid', { field });
  return normalized;
}

/**
 * Checks a new password against the policy, naming `field` in the error; the error never carries the
 * password. Length counts characters (code points), not bytes.
 */
export function checkPasswordPolicy(password: string, username: string, field = 'password'): void {
  const normalized = normalizePassword(password);
  const length = [...normalized].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
    throw new CardholdError('password_length_invalid', { field });
  }
  if (!/\p{L}/u.test(normalized) || !/\p{Nd}/u.test(normalized)) {
    throw new CardholdError('password_too_weak', { field });
  }
  if (normalized.trim().toLowerCase() === normalizeUsername(username)) {
    throw new CardholdError('password_matches_username', { field });
  }
}
