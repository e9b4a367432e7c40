import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomPooled } from './random-pool.ts';

test('pooled random draws have the asked size and never repeat, across pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2_000; i++) {
    const size = [12, 16, 32, 30][i % 4] as number;
    const bytes = randomPooled(size);
    assert.equal(bytes.length, size);
    seen.add(bytes.toString('hex'));
  }
  assert.equal(seen.size, 2_000);
  const large = randomPooled(10_000);
  assert.equal(large.length, 10_000);
  assert.ok(large.some((b) => b !== 0));
});

test('a drawn buffer is a copy: zeroing it does not change the next draw', () => {
  const a = randomPooled(32);
  const copy = Buffer.from(a);
  a.fill(0);
  const b = randomPooled(32);
  assert.notDeepEqual(b, a);
  assert.notDeepEqual(b, copy);
});
