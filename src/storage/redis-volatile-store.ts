import { Redis } from 'ioredis';
import { CardholdError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { SlotContent, SlotInfo, SlotTake, VolatileStore } from './volatile-store.ts';

// Each slot is a hash {v: value, r: ref, u: uses left} with a PEXPIRE. The scripts make create-if-absent
// and take-one-use atomic, so concurrent retries can never use a slot more often than allowed.
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', ARGV[2], 'u', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`;

const TAKE = `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return nil end
local u = redis.call('HINCRBY', KEYS[1], 'u', -1)
local r = redis.call('HGET', KEYS[1], 'r')
if u <= 0 then redis.call('DEL', KEYS[1]) end
return {v, r, tostring(u)}`;

type RedisWithScripts = Redis & {
  cardholdSlotCreate(key: string, value: Buffer, ref: string, uses: number, ttlMs: number): Promise<number>;
  cardholdSlotTakeBuffer(key: string): Promise<[Buffer, Buffer, Buffer] | null>;
};

export class RedisVolatileStore implements VolatileStore {
  readonly kind = 'redis' as const;
  readonly #redis: RedisWithScripts;

  constructor(url: string, logger?: Logger) {
    const redis = new Redis(url, {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 5000,
      commandTimeout: 5000,
    });
    redis.on('error', (error: Error) =>
      logger?.warn({ err: { message: error.message } }, 'redis connection error'),
    );
    redis.defineCommand('cardholdSlotCreate', { numberOfKeys: 1, lua: CREATE });
    redis.defineCommand('cardholdSlotTake', { numberOfKeys: 1, lua: TAKE });
    this.#redis = redis as RedisWithScripts;
  }

  /** Waits for the first connection so start-up fails fast when Redis is unreachable. */
  async ready(): Promise<void> {
    if (this.#redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('Redis did not become ready within 5 s')), 5000);
      this.#redis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      throw new CardholdError('volatile_store_unavailable', { cause });
    }
  }

  async create(key: string, content: SlotContent, uses: number, ttlMs: number): Promise<boolean> {
    const created = await this.#call(() =>
      this.#redis.cardholdSlotCreate(key, content.value, content.ref, uses, Math.max(1, Math.round(ttlMs))),
    );
    return created === 1;
  }

  async take(key: string): Promise<SlotTake | null> {
    const reply = await this.#call(() => this.#redis.cardholdSlotTakeBuffer(key));
    if (!reply) return null;
    const [value, ref, uses] = reply;
    return { value, ref: ref.toString(), usesLeft: Number(uses.toString()) };
  }

  async info(key: string): Promise<SlotInfo | null> {
    const [fields, ttl] = await this.#call(async () => {
      const result = await this.#redis.multi().hmget(key, 'r', 'u').pttl(key).exec();
      if (!result) throw new Error('transaction aborted');
      return [result[0]?.[1] as (string | null)[], result[1]?.[1] as number];
    });
    const [ref, uses] = fields;
    if (ref === null || ref === undefined || uses === null || uses === undefined || ttl < 0) return null;
    return { ref, usesLeft: Number(uses), expiresAt: new Date(Date.now() + ttl) };
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#call(() => this.#redis.del(key))) > 0;
  }

  async count(prefix: string): Promise<number> {
    return this.#call(async () => {
      let n = 0;
      let cursor = '0';
      do {
        const [next, keys] = await this.#redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        n += keys.length;
        cursor = next;
      } while (cursor !== '0');
      return n;
    });
  }

  async check(): Promise<void> {
    await this.#call(() => this.#redis.ping());
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
