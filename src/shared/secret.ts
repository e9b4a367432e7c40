import { inspect } from 'node:util';

const REDACTED = '[REDACTED]';

/**
 * Carries card data (or any secret) through the code without letting it leak by accident:
 * string conversion, JSON serialisation and util.inspect all redact. Only `expose()` yields the value,
 * so every place that touches plaintext is greppable.
 */
export class Secret<T> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  expose(): T {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}

/** Binary secret that is zeroed once used; for CVVs and data keys, whose buffers must not linger. */
export class SecretBytes extends Secret<Buffer> {
  #wiped = false;

  /** Overwrites the bytes with zeros; later `expose()` calls see only zeros. */
  wipe(): void {
    if (!this.#wiped) {
      this.expose().fill(0);
      this.#wiped = true;
    }
  }

  get wiped(): boolean {
    return this.#wiped;
  }
}

export const redactedMarker = REDACTED;
