import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newId, randomBase62, tokenIdPattern } from './identifiers.ts';

test('randomBase62 gives the full width from the base62 alphabet, and ids match their pattern', () => {
  assert.match(randomBase62(), /^[0-9A-Za-z]{22}$/);
  assert.match(randomBase62(32), /^[0-9A-Za-z]{43}$/);
  assert.match(newId('tok'), new RegExp(tokenIdPattern));
  const ids = new Set(Array.from({ length: 10_000 }, () => randomBase62()));
  assert.equal(ids.size, 10_000);
});

test('randomBase62 characters are uniform in every position (chi-square)', () => {
  const samples = 31_000; // 500 expected per symbol and position
  const counts = Array.from({ length: 22 }, () => new Map<string, number>());
  for (let i = 0; i < samples; i++) {
    const id = randomBase62();
    for (let p = 0; p < id.length; p++) {
      const at = counts[p] as Map<string, number>;
      const ch = id[p] as string;
      at.set(ch, (at.get(ch) ?? 0) + 1);
    }
  }
  const expected = samples / 62;
  for (const [position, at] of counts.entries()) {
    assert.equal(at.size, 62, `position ${position} uses all 62 symbols`);
    let chi = 0;
    for (const n of at.values()) chi += (n - expected) ** 2 / expected;
    // 61 degrees of freedom: a fair generator exceeds 135 about once in 10^9 tries; folding bytes with
    // `byte % 62` and no rejection (symbols 0-7 a quarter likelier) scores about 280.
    assert.ok(chi < 135, `position ${position}: chi-square ${chi.toFixed(1)}`);
  }
});
