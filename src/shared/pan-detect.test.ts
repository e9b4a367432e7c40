import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { allTestPans } from '../../test/fixtures/cards.ts';
import { findPans, luhnValid, maskPan, panRedaction, redactPans } from './pan-detect.ts';

/** Appends the check digit that makes `body` Luhn-valid. */
function withCheckDigit(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return body + d;
  throw new Error('unreachable');
}

test('Luhn accepts every published test card and rejects a changed digit', () => {
  for (const pan of allTestPans) {
    assert.equal(luhnValid(pan), true, maskPan(pan));
    const changed = pan.slice(0, -1) + String((Number(pan.at(-1)) + 1) % 10);
    assert.equal(luhnValid(changed), false);
  }
  assert.equal(luhnValid(''), false);
  assert.equal(luhnValid('42a2'), false);
});

test('finds PANs contiguous, spaced or hyphenated, and in JSON; ignores timestamps and short numbers', () => {
  const pan = allTestPans[0] as string;
  const spaced = pan.replace(/(\d{4})(?=\d)/g, '$1 ');
  const hyphened = pan.replace(/(\d{4})(?=\d)/g, '$1-');
  for (const text of [pan, `card=${pan};`, `{"pan":"${pan}"}`, spaced, hyphened, `x${hyphened}y`]) {
    assert.equal(findPans(text).length, 1, text.replace(/\d/g, '#'));
    assert.ok(!redactPans(text).includes(pan.slice(4, 12)));
  }
  for (const text of [
    '2026-11-22T07:30:43.602Z',
    'port 8443 pid 12345',
    'id 123456789012',
    'no digits here',
  ]) {
    assert.equal(findPans(text).length, 0, text);
    assert.equal(redactPans(text), text);
  }
});

test('finds PANs written with any separators people and systems use, up to three between digits', () => {
  const pan = allTestPans[0] as string;
  for (const sep of ['  ', '\t', '.', '/', '_', '+', '\u00a0', '\u202f', ' - ', '. ']) {
    const shown = pan.replace(/(\d{4})(?=\d)/g, `$1${sep}`);
    assert.equal(findPans(shown).length, 1, JSON.stringify(sep));
    assert.equal(redactPans(`reason: ${shown}!`), `reason: ${panRedaction}!`, JSON.stringify(sep));
  }
  // One digit at a time, dotted.
  assert.equal(findPans(pan.split('').join('.')).length, 1);
  // Four separators in a row, or a line break, end a run: these are not one number.
  assert.equal(findPans(pan.replace(/(\d{4})(?=\d)/g, '$1    ')).length, 0);
  assert.equal(findPans(pan.replace(/(\d{8})(?=\d)/g, '$1\n')).length, 0);
});

test('a UUID is not a card number, however its digit groups join; a card number beside one still is', () => {
  // Its digits 9-9184-40544056586 join to a 16-digit run that embeds a Luhn-valid one; about one random
  // UUID in 140 has such a run.
  const uuid = '54bdea3d-8e93-47b9-9184-40544056586e';
  assert.equal(findPans('b9-9184-40544056586e').length, 1);
  for (const text of [uuid, uuid.toUpperCase(), `urn:cardhold:request:${uuid}`, `{"order":"${uuid}"}`]) {
    assert.deepEqual(findPans(text), [], text);
    assert.equal(redactPans(text), text);
  }
  // The same run in what is not a UUID (version 0, a fifth group too long, glued to a letter) counts.
  for (const text of [uuid.replace('47b9', '07b9'), `${uuid}f`, `x${uuid}`]) {
    assert.equal(findPans(text).length, 1, text);
  }
  const pan = allTestPans[0] as string;
  const grouped = pan.replace(/(\d{4})(?=\d)/g, '$1-');
  for (const text of [`${uuid} ${pan}`, `${pan}-${uuid}`, `${uuid}-${grouped}`, `${grouped}/${uuid}`]) {
    assert.equal(findPans(text).length, 1, text.replace(/\d/g, '#'));
    assert.equal(redactPans(text).includes(uuid), true);
    assert.equal(redactPans(text).includes(pan.slice(4, 12)), false);
  }
  fc.assert(
    fc.property(fc.uuid(), (id) => {
      assert.deepEqual(findPans(`request ${id} done`), []);
    }),
    { numRuns: 2000 },
  );
});

test('property: after redaction no Luhn-valid 13–19 digit run survives, whatever surrounds it', () => {
  const pan = fc
    .tuple(fc.integer({ min: 12, max: 18 }), fc.stringMatching(/^[1-9][0-9]{17}$/))
    .map(([len, digits]) => withCheckDigit(digits.slice(0, len)));
  const noise = fc.string({ maxLength: 40 }).map((s) => s.replace(/\d/g, ''));
  const separator = fc.constantFrom('', ' ', '-', '  ', '.', '/', '_', '+', '\t', '\u00a0');
  fc.assert(
    fc.property(noise, pan, separator, noise, (before, p, sep, afterText) => {
      const shown = sep ? p.replace(/(\d{4})(?=\d)/g, `$1${sep}`) : p;
      const out = redactPans(`${before}${shown}${afterText}`);
      assert.ok(out.includes(panRedaction));
      assert.equal(findPans(out).length, 0);
      assert.ok(!out.replace(/[^\d\n]/g, '').includes(p));
    }),
    { numRuns: 500 },
  );
});

test('property: long digit runs that embed a PAN are redacted whole', () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[0-9]{1,10}$/), fc.stringMatching(/^[0-9]{1,10}$/), (a, b) => {
      const text = `${a}${allTestPans[0]}${b}`;
      assert.equal(redactPans(text), panRedaction);
    }),
  );
});

test('masking shows at most the BIN and last four', () => {
  assert.equal(maskPan('4242424242424242'), '42424242****4242');
  assert.equal(maskPan('378282246310005'), '378282*****0005');
});
