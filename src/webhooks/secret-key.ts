import type { Sql } from 'postgres';
import type { KeyProvider } from '../keys/key-provider.ts';
import { SealingKey } from '../keys/sealing-key.ts';
import { Secret } from '../shared/secret.ts';

/**
 * The key that encrypts endpoint signing secrets at rest. The api must compute HMACs with them, so they
 * cannot be hashed like API keys: they are sealed (AES-256-GCM, the AAD binding the endpoint) under a key
 * that is stored only wrapped by the key provider (webhooks.secret_keys). A database dump alone reveals
 * no signing secret.
 */
export class WebhookSecretKey {
  readonly #key: SealingKey;

  private constructor(key: SealingKey) {
    this.#key = key;
  }

  get version(): number {
    return this.#key.version;
  }

  static async open(sql: Sql, provider: KeyProvider): Promise<{ key: WebhookSecretKey; created: boolean }> {
    const { key, created } = await SealingKey.open(sql, provider, {
      table: 'webhooks.secret_keys',
      name: 'webhook secret key',
      purpose: 'webhook-secret',
    });
    return { key: new WebhookSecretKey(key), created };
  }

  seal(secret: Secret<string>, endpointId: string): Buffer {
    return this.#key.seal(Buffer.from(secret.expose()), endpointId);
  }

  open(sealed: Buffer, version: number, endpointId: string): Secret<string> {
    const plain = this.#key.open(sealed, version, endpointId);
    try {
      return new Secret(plain.toString('utf8'));
    } finally {
      plain.fill(0);
    }
  }
}
