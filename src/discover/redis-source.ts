import { Redis } from 'ioredis';
import type { DiscoverySink } from './finding.ts';
import { readError, redactDigitRuns } from './masking.ts';
import { scanValue } from './text-scan.ts';

export interface RedisScanOptions {
  url: string;
  /** SCAN MATCH pattern (default every key). */
  match: string;
}

const page = 500;

/**
 * Scans key names and values with SCAN (never KEYS): strings, hash fields and values, list items, set
 * and sorted-set members, stream entries. Findings name the key (masked) and the field or index.
 */
export async function scanRedis(options: RedisScanOptions, sink: DiscoverySink): Promise<void> {
  const redis = new Redis(options.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 10_000,
    enableOfflineQueue: false,
  });
  const where = redisHost(options.url);
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scanBuffer(cursor, 'MATCH', options.match, 'COUNT', page);
      cursor = next.toString();
      for (const key of keys) {
        try {
          await scanKey(redis, key, sink);
        } catch (error) {
          sink.error({
            source: `redis ${where} ${redactDigitRuns(key.toString('latin1'))}`,
            message: readError(error),
          });
        }
      }
    } while (cursor !== '0');
  } catch (error) {
    sink.error({ source: `redis ${where}`, message: readError(error) });
  } finally {
    redis.disconnect();
  }
}

function redisHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'redis';
  }
}

async function scanKey(redis: Redis, key: Buffer, sink: DiscoverySink): Promise<void> {
  const keyName = redactDigitRuns(key.toString('utf8'));
  const at = (field: string | null) => ({ source: 'redis' as const, key: keyName, field });
  scanValue(key, at('(key name)'), sink);
  const type = await redis.type(key);
  switch (type) {
    case 'string': {
      const value = await redis.getBuffer(key);
      if (value) scanValue(value, at(null), sink);
      return;
    }
    case 'hash': {
      let cursor = '0';
      do {
        const [next, items] = await redis.hscanBuffer(key, cursor, 'COUNT', page);
        cursor = next.toString();
        for (let i = 0; i + 1 < items.length; i += 2) {
          const field = redactDigitRuns((items[i] as Buffer).toString('utf8'));
          scanValue(items[i] as Buffer, at(`${field} (field name)`), sink);
          scanValue(items[i + 1] as Buffer, at(field), sink);
        }
      } while (cursor !== '0');
      return;
    }
    case 'list': {
      for (let start = 0; ; start += page) {
        const items = await redis.lrangeBuffer(key, start, start + page - 1);
        for (const [i, item] of items.entries()) scanValue(item, at(`[${start + i}]`), sink);
        if (items.length < page) return;
      }
    }
    case 'set':
    case 'zset': {
      let cursor = '0';
      do {
        const [next, items] =
          type === 'set'
            ? await redis.sscanBuffer(key, cursor, 'COUNT', page)
            : await redis.zscanBuffer(key, cursor, 'COUNT', page);
        cursor = next.toString();
        const stride = type === 'set' ? 1 : 2; // sorted sets answer member, score, member, score…
        for (let i = 0; i < items.length; i += stride) scanValue(items[i] as Buffer, at('(member)'), sink);
      } while (cursor !== '0');
      return;
    }
    case 'stream': {
      let start = '-';
      for (;;) {
        const entries = (await redis.xrangeBuffer(key, start, '+', 'COUNT', page)) as [Buffer, Buffer[]][];
        for (const [id, fields] of entries) {
          for (let i = 0; i + 1 < fields.length; i += 2)
            scanValue(
              fields[i + 1] as Buffer,
              at(`${id.toString()} ${redactDigitRuns((fields[i] as Buffer).toString())}`),
              sink,
            );
        }
        if (entries.length < page) return;
        start = `(${(entries.at(-1) as [Buffer, Buffer[]])[0].toString()}`;
      }
    }
    default:
      sink.warning({ source: `redis ${keyName}`, message: `type ${type} not scanned` });
  }
}
