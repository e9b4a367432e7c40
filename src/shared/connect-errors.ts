/**
 * Whether an HTTP client error happened before the request could have reached the server. Connection
 * refused, name resolution, routing, connect timeouts and a server certificate that fails verification
 * all stop before a byte of the request is sent; anything else (a reset, a closed socket, a timeout
 * waiting for the answer) may have come after the server acted on it.
 */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** The most specific code of an undici or Node error (its cause's first), for logs and classification. */
export function connectErrorCode(error: unknown): string {
  const e = error as { code?: string; cause?: { code?: string }; name?: string };
  return e?.cause?.code ?? e?.code ?? e?.name ?? 'unknown';
}

/** True only when the error proves the request never left: the caller may safely try elsewhere. */
export function neverSent(error: unknown): boolean {
  return NOT_SENT.has(connectErrorCode(error));
}
