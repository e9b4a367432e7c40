import assert from 'node:assert/strict';
import { test } from 'node:test';
import { latencySchedule, SeededLatency } from './latency.ts';

test('seeded latency: the same seed gives the same delays, another seed others, all within 0..max', () => {
  const first = latencySchedule(42, 250, 200);
  assert.deepEqual(latencySchedule(42, 250, 200), first);
  assert.notDeepEqual(latencySchedule(43, 250, 200), first);
  assert.ok(first.every((ms) => Number.isInteger(ms) && ms >= 0 && ms <= 250));
  // Spread over the range, not stuck at one value.
  assert.ok(Math.min(...first) < 25 && Math.max(...first) > 225);
  assert.deepEqual(latencySchedule(42, 0, 5), [0, 0, 0, 0, 0]);
});

test('seeded latency: wait() sleeps the next delay of the sequence', async () => {
  const latency = new SeededLatency(9, 40);
  const expected = latencySchedule(9, 40, 3);
  for (const ms of expected) {
    const started = performance.now();
    await latency.wait();
    assert.ok(performance.now() - started >= ms - 1, `waited at least ${ms} ms`);
  }
});
