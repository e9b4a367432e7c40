import { type Algorithm, hash, parseOptions, verify } from '@node-rs/argon2';
import { normalizePassword, PASSWORD_MAX_LENGTH } from './password-policy.ts';

/**
 * argon2id with OWASP's first recommended setting: 19 MiB of memory, 2 passes, 1 lane, a 16-byte
 * random salt (the library's) and a 32-byte output. `Algorithm` is a const enum that type stripping
 * cannot inline, hence the literal.
 */
export const argon2Parameters = {
  algorithm: 2 as Algorithm, // Algorithm.Argon2id
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
  outputLen: 32,
} as const;

/** The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), which carries its own parameters. */
export async function hashPassword(password: string): Promise<string> {
  return hash(normalizePassword(password), argon2Parameters);
}

/**
 * Whether `password` matches `phc`. The library recomputes the hash with the stored parameters and
 * compares in constant time. A malformed or non-argon2id hash never matches.
 */
export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  if (!phc.startsWith('$argon2id$')) return false;
  // Far beyond the policy's maximum: refused without hashing megabytes (still counted as a failure).
  if (password.length > 4 * PASSWORD_MAX_LENGTH) return false;
  try {
    return await verify(phc, normalizePassword(password));
  } catch {
    return false;
  }
}

/** A stored hash made with weaker or different parameters than today's, to re-hash at the next login. */
export function needsRehash(phc: string): boolean {
  try {
    const o = parseOptions(phc);
    return (
      o.algorithm !== argon2Parameters.algorithm ||
      o.memoryCost < argon2Parameters.memoryCost ||
      o.timeCost < argon2Parameters.timeCost ||
      o.outputLen < argon2Parameters.outputLen
    );
  } catch {
    return true;
  }
}

let dummy: Promise<string> | undefined;

/**
 * A hash of a random password, verified against when the username is unknown, so that an unknown user
 * costs the same time as a wrong password and response times do not reveal which usernames exist.
 */
export function dummyPasswordHash(): Promise<string> {
  dummy ??= hash(crypto.randomUUID(), argon2Parameters);
  return dummy;
}
