/** What a credential looks like, by name and by value; shared by the Kubernetes, Compose and Dockerfile rules. */
const secretName =
  /(passw(or)?d|passwd|secret|token|api[_-]?key|private[_-]?key|credential|access[_-]?key|auth[_-]?key|client[_-]?secret)/i;
// Names that point at a secret rather than hold one.
const referenceName = /(_FILE|_PATH|_DIR|_REF|_NAME|_ID)$/i;

const secretValues: RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /\bAKIA[0-9A-Z]{16}\b/,
  /\bgh[pousr]_[A-Za-z0-9]{36,}\b/,
  /\bxox[abpr]-[A-Za-z0-9-]{10,}/,
  /\b(sk|rk)_live_[A-Za-z0-9]{16,}/,
  /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/,
  /:\/\/[^/\s:@]+:[^/\s@]+@/,
];

export function isSecretLikeName(name: string): boolean {
  return secretName.test(name) && !referenceName.test(name);
}

export function isSecretLikeValue(value: string): boolean {
  return secretValues.some((pattern) => pattern.test(value));
}

/** A literal that is only a placeholder or an interpolation is not a committed secret. */
export function isLiteralValue(value: string): boolean {
  const trimmed = value.trim();
  return trimmed !== '' && !/^\$\{?[\w:-]+\}?$/.test(trimmed) && !/^(changeme|<.*>|\*+)$/i.test(trimmed);
}
