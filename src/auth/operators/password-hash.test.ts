import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseOptions } from '@node-rs/argon2';
import { argon2Parameters, hashPassword, needsRehash, verifyPassword } from './password-hash.ts';

test('passwords are hashed with argon2id at the stated parameters, with a fresh salt each time', async () => {
  const password = 'correct4horse-battery';
  const a = await hashPassword(password);
  const b = await hashPassword(password);
  assert.match(a, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.notEqual(a, b, 'salted');
  assert.ok(!a.includes(password));
  const options = parseOptions(a);
  assert.equal(options.memoryCost, argon2Parameters.memoryCost);
  assert.equal(options.timeCost, argon2Parameters.timeCost);
  assert.equal(options.parallelism, argon2Parameters.parallelism);
  assert.equal(options.saltLen, 16);
  assert.equal(needsRehash(a), false);
});

test('verify accepts the password and nothing else', async () => {
  const h = await hashPassword('correct4horse-battery');
  assert.equal(await verifyPassword(h, 'correct4horse-battery'), true);
  assert.equal(await verifyPassword(h, 'correct4horse-batterY'), false);
  assert.equal(await verifyPassword(h, ''), false);
  assert.equal(await verifyPassword('not a hash', 'correct4horse-battery'), false);
  assert.equal(await verifyPassword('$argon2i$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA', 'x'), false);
});

test('the same password in two Unicode forms verifies (NFC)', async () => {
  const composed = 'Caf\u00e9-password-2024';
  const decomposed = 'Cafe\u0301-password-2024';
  const h = await hashPassword(composed);
  assert.equal(await verifyPassword(h, decomposed), true);
});

test('hashes made with weaker parameters are flagged for re-hashing', () => {
  assert.equal(
    needsRehash(
      '$argon2id$v=19$m=4096,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY',
    ),
    true,
  );
  assert.equal(needsRehash('garbage'), true);
});
