import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { MemoryVolatileStore } from './memory-volatile-store.ts';
import { RedisVolatileStore } from './redis-volatile-store.ts';
import type { VolatileStore } from './volatile-store.ts';

const redisUrl = process.env['CARDHOLD_TEST_REDIS_URL'];
const stores: Array<[string, () => { store: VolatileStore; exists: (key: string) => Promise<boolean> }]> = [
  [
    'memory',
    () => {
      const store = new MemoryVolatileStore({ sweepIntervalMs: 50 });
      return { store, exists: async (key) => store.holds(key) };
    },
  ],
];
if (redisUrl) {
  const raw = new Redis(redisUrl);
  after(() => raw.disconnect());
  stores.push([
    'redis',
    () => ({ store: new RedisVolatileStore(redisUrl), exists: async (key) => (await raw.exists(key)) === 1 }),
  ]);
}

for (const [name, make] of stores) {
  describe(`volatile store (${name})`, () => {
    const { store, exists } = make();
    const prefix = `cardhold:test:${randomBytes(4).toString('hex')}:`;
    after(() => store.close());

    test('take consumes uses and deletes the slot on the last one', async () => {
      const key = `${prefix}uses`;
      assert.equal(await store.create(key, { value: Buffer.from('v1'), ref: 'tok_1' }, 2, 60_000), true);
      assert.equal(
        await store.create(key, { value: Buffer.from('v2'), ref: 'tok_1' }, 2, 60_000),
        false,
        'no overwrite',
      );
      const first = await store.take(key);
      assert.deepEqual([first?.value.toString(), first?.ref, first?.usesLeft], ['v1', 'tok_1', 1]);
      assert.equal((await store.info(key))?.usesLeft, 1);
      const second = await store.take(key);
      assert.equal(second?.usesLeft, 0);
      assert.equal(await exists(key), false, 'deleted in the store itself');
      assert.equal(await store.take(key), null);
    });

    test('concurrent takes never exceed the use budget', async () => {
      const key = `${prefix}race`;
      await store.create(key, { value: Buffer.from('v'), ref: 'r' }, 3, 60_000);
      const results = await Promise.all(Array.from({ length: 20 }, () => store.take(key)));
      assert.equal(results.filter((r) => r !== null).length, 3);
    });

    test('expired slots are deleted from the store', async () => {
      const key = `${prefix}ttl`;
      // Two seconds: the checks before expiry must finish first, even on a loaded machine.
      await store.create(key, { value: Buffer.from('v'), ref: 'r' }, 3, 2000);
      assert.equal(await exists(key), true);
      assert.ok((await store.info(key))!.expiresAt.getTime() > Date.now());
      await new Promise((r) => setTimeout(r, 2400));
      assert.equal(await exists(key), false);
      assert.equal(await store.info(key), null);
    });

    test('delete and count', async () => {
      await store.create(`${prefix}c1`, { value: Buffer.from('v'), ref: 'r' }, 1, 60_000);
      await store.create(`${prefix}c2`, { value: Buffer.from('v'), ref: 'r' }, 1, 60_000);
      assert.equal(await store.count(`${prefix}c`), 2);
      assert.equal(await store.delete(`${prefix}c1`), true);
      assert.equal(await store.delete(`${prefix}c1`), false);
      assert.equal(await store.count(`${prefix}c`), 1);
      await store.check();
    });
  });
}

test('the memory store zeroes values it deletes', async () => {
  let now = 0;
  const store = new MemoryVolatileStore({ now: () => now });
  const value = Buffer.from('7391');
  await store.create('k', { value, ref: 'r' }, 1, 1000);
  const taken = await store.take('k');
  assert.equal(taken?.value.toString(), '7391');
  await store.create('k2', { value, ref: 'r' }, 1, 1000);
  now = 5000;
  assert.equal(store.sweep(), 1);
  await store.close();
});

test('an unreachable Redis fails closed with volatile_store_unavailable', async () => {
  const store = new RedisVolatileStore('redis://127.0.0.1:1');
  await assert.rejects(store.take('k'), { code: 'volatile_store_unavailable' });
  await store.close();
});
