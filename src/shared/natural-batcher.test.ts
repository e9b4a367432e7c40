import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NaturalBatcher, type Settled } from './natural-batcher.ts';

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('a lone item runs at once; items arriving while all slots are busy leave together', async () => {
  const batches: number[][] = [];
  let release: (() => void) | undefined;
  const batcher = new NaturalBatcher<number, number>({
    concurrency: 1,
    maxBatch: 3,
    run: async (items) => {
      batches.push(items);
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return items.map((n) => ({ ok: true, value: n * 10 }));
    },
  });
  const first = batcher.submit(1);
  await tick();
  assert.deepEqual(batches, [[1]], 'the first item did not wait');
  const rest = [2, 3, 4, 5, 6].map((n) => batcher.submit(n));
  await tick();
  assert.equal(batches.length, 1, 'nothing else starts while the only slot is busy');
  release?.();
  assert.equal(await first, 10);
  await tick();
  assert.deepEqual(batches[1], [2, 3, 4], 'waiting items leave together, up to maxBatch');
  release?.();
  await tick();
  assert.deepEqual(batches[2], [5, 6]);
  release?.();
  assert.deepEqual(await Promise.all(rest), [20, 30, 40, 50, 60]);
});

test('each item gets its own outcome, and a thrown batch rejects every item in it', async () => {
  const batcher = new NaturalBatcher<number, number>({
    concurrency: 2,
    maxBatch: 10,
    run: async (items): Promise<Settled<number>[]> => {
      if (items.includes(13)) throw new Error('whole batch failed');
      return items.map((n) =>
        n % 2 === 0 ? { ok: true, value: n } : { ok: false, error: new Error(`odd ${n}`) },
      );
    },
  });
  assert.equal(await batcher.submit(2), 2);
  await assert.rejects(batcher.submit(3), /odd 3/);
  await assert.rejects(batcher.submit(13), /whole batch failed/);
  // Still usable after a failure.
  assert.equal(await batcher.submit(4), 4);
});

test('never more batches in flight than the concurrency allows', async () => {
  let inFlight = 0;
  let most = 0;
  const batcher = new NaturalBatcher<number, number>({
    concurrency: 3,
    maxBatch: 2,
    run: async (items) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await tick();
      inFlight--;
      return items.map((n) => ({ ok: true, value: n }));
    },
  });
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => batcher.submit(i)));
  assert.deepEqual(
    results,
    Array.from({ length: 40 }, (_, i) => i),
  );
  assert.equal(most, 3);
});
