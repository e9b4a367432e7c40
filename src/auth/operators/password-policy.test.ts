import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CardholdError } from '../../shared/errors.ts';
import { checkPasswordPolicy, checkUsername } from './password-policy.ts';

/** Asserts that `fn` throws the CardholdError `code` naming `field`, and that it never echoes `value`. */
function refuses(fn: () => unknown, code: string, field: string, value: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CardholdError);
    assert.equal(error.code, code);
    assert.equal(error.field, field);
    assert.equal(error.status, 422);
    const rendered = JSON.stringify({ ...error, message: error.message, detail: error.detail });
    assert.ok(!rendered.includes(value), 'the error does not carry the password');
    return true;
  });
}

test('a password of 12 or more characters with letters and digits is accepted', () => {
  checkPasswordPolicy('correct4horse', 'ada');
  checkPasswordPolicy('abcdefghijk1', 'ada'); // exactly 12
  checkPasswordPolicy('Pässwörter2024', 'ada'); // letters beyond ASCII count as letters
  checkPasswordPolicy(`${'a'.repeat(255)}1`, 'ada'); // 256, the upper bound
});

test('length: fewer than 12 characters, or more than 256, is refused', () => {
  refuses(
    () => checkPasswordPolicy('abcdefghij1', 'ada'),
    'password_length_invalid',
    'password',
    'abcdefghij1',
  );
  refuses(() => checkPasswordPolicy('', 'ada'), 'password_length_invalid', 'password', '\u0000');
  const long = `${'a'.repeat(256)}1`;
  refuses(() => checkPasswordPolicy(long, 'ada'), 'password_length_invalid', 'password', long);
  // Characters, not bytes or UTF-16 units: 11 emoji (22 code units) are still 11 characters.
  const emoji = `${'😀'.repeat(10)}1`;
  refuses(() => checkPasswordPolicy(emoji, 'ada'), 'password_length_invalid', 'password', emoji);
});

test('letters and digits: a password without one or the other is refused', () => {
  refuses(
    () => checkPasswordPolicy('onlyletterspassword', 'ada'),
    'password_too_weak',
    'password',
    'onlyletterspassword',
  );
  refuses(
    () => checkPasswordPolicy('123456789012345', 'ada'),
    'password_too_weak',
    'password',
    '123456789012345',
  );
  refuses(
    () => checkPasswordPolicy('!!!!????####1', 'ada'),
    'password_too_weak',
    'password',
    '!!!!????####1',
  );
});

test('a password equal to the username (in any case) is refused', () => {
  refuses(
    () => checkPasswordPolicy('Operator12345', 'operator12345'),
    'password_matches_username',
    'password',
    'Operator12345',
  );
});

test('the field named in the error is the one given', () => {
  refuses(
    () => checkPasswordPolicy('short1', 'ada', 'new_password'),
    'password_length_invalid',
    'new_password',
    'short1',
  );
});

test('usernames are lower-cased and limited to a letter then letters, digits, dot, hyphen, underscore', () => {
  assert.equal(checkUsername('  Ada.Lovelace '), 'ada.lovelace');
  assert.equal(checkUsername('sec-admin_1'), 'sec-admin_1');
  for (const bad of ['ab', '1ada', 'ada lovelace', 'ada@example', 'a'.repeat(65), '']) {
    assert.throws(
      () => checkUsername(bad),
      (e: unknown) => e instanceof CardholdError && e.code === 'username_invalid' && e.field === 'username',
    );
  }
});
