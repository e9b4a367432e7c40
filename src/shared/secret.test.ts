import assert from 'node:assert/strict';
import { test } from 'node:test';
import { format, inspect } from 'node:util';
import { testCards } from '../../test/fixtures/cards.ts';
import { Secret, SecretBytes } from './secret.ts';

test('every implicit rendering of a Secret redacts', () => {
  const pan = testCards.visa;
  const s = new Secret(pan);
  const renderings = [
    String(s),
    `${s}`,
    JSON.stringify(s),
    JSON.stringify({ card: { pan: s } }),
    inspect(s),
    inspect({ nested: [s] }, { depth: 10 }),
    format('%s %o %O %j', s, s, s, s),
    `${s}` + '',
  ];
  for (const r of renderings) assert.ok(!r.includes(pan), `rendering leaked: ${r.replace(/\d/g, '#')}`);
  assert.equal(s.expose(), pan);
});

test('SecretBytes zeroes its buffer when wiped', () => {
  const bytes = Buffer.from('7391');
  const s = new SecretBytes(bytes);
  assert.equal(s.wiped, false);
  s.wipe();
  assert.ok(bytes.every((b) => b === 0));
  assert.equal(s.wiped, true);
  s.wipe();
  assert.equal(inspect(s), 'Secret([REDACTED])');
});
