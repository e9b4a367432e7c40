import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { allTestPans } from '../../test/fixtures/cards.ts';
import { detectInChunks } from '../../test/fixtures/detect-in-chunks.ts';
import { brandShapes, withCheckDigit } from '../../test/fixtures/discover-corpus.ts';
import type { Detection, IdleScan } from './detector.ts';

const detect = (input: Buffer, idleScan: IdleScan, chunkSizes?: number[]): Detection[] =>
  detectInChunks(input, chunkSizes, idleScan);

const escapeDigit = (d: string) => `\\u00${(48 + Number(d)).toString(16)}`;

/** A Luhn-valid number in a brand's range and length (test cards, trivial ones and all). */
const cardNumber = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(...brandShapes),
      fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 18, maxLength: 18 }),
    )
    .map(([shape, digits]) =>
      withCheckDigit(shape.prefix + digits.slice(0, shape.length - shape.prefix.length - 1).join('')),
    ),
  fc.constantFrom(...allTestPans),
);

/** The same number as it may be written: plain, grouped, JSON-escaped in whole or in part, cut short. */
const writtenNumber = fc
  .tuple(
    cardNumber,
    fc.constantFrom('plain', 'spaced', 'dashed', 'escaped', 'some-escaped', 'escaped-space', 'cut'),
    fc.nat(),
  )
  .map(([pan, form, seed]) => {
    switch (form) {
      case 'spaced':
        return pan.replace(/(\d{4})(?=\d)/g, '$1 ');
      case 'dashed':
        return pan.replace(/(\d{4})(?=\d)/g, '$1-');
      case 'escaped':
        return [...pan].map(escapeDigit).join('');
      case 'some-escaped':
        return [...pan].map((d, i) => ((seed >> (i % 30)) & 1 ? escapeDigit(d) : d)).join('');
      case 'escaped-space':
        return pan.replace(/(\d{4})(?=\d)/g, '$1\\u0020');
      case 'cut':
        return pan.slice(0, 1 + (seed % (pan.length - 1)));
      default:
        return pan;
    }
  });

/** Pieces of text that touch the detector's rules: separators, decimals, escapes, glue, lines, non-ASCII. */
const piece = fc.oneof(
  { weight: 3, arbitrary: writtenNumber },
  { weight: 2, arbitrary: fc.stringMatching(/^[0-9]{1,22}$/) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      ' ',
      '  ',
      '-',
      '--',
      '.',
      '_',
      'x',
      'card ',
      'id-',
      'tok_',
      '\n',
      '"',
      ',',
      'é',
      '€',
      '\\',
      '\\u',
      '\\u00',
      '\\u0020',
      '\\u002d',
      '\\u0041',
      '\\u2028',
      '\\n',
      '\\"',
      '\\/',
    ),
  },
);

test('property: the fast idle scan finds exactly what the exact byte loop finds, however the input is chunked', () => {
  let detections = 0;
  fc.assert(
    fc.property(
      fc.array(piece, { maxLength: 40 }),
      fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 4 }),
      (pieces, chunkSizes) => {
        const input = Buffer.from(pieces.join(''));
        const exact = detect(input, 'exact');
        detections += exact.length;
        assert.deepEqual(detect(input, 'fast'), exact, 'one chunk');
        // The same chunks for both: what follows a number is context only as far as it has arrived.
        assert.deepEqual(
          detect(input, 'fast', chunkSizes),
          detect(input, 'exact', chunkSizes),
          `chunks of ${chunkSizes.join(', ')}`,
        );
      },
    ),
    { numRuns: 1500 },
  );
  assert.ok(
    detections > 100,
    `${detections} detections: the inputs hold card numbers, so the comparison has teeth`,
  );
});

test('the fast idle scan searches large chunks window by window without losing or repeating a number', () => {
  // Chunks over 64 KiB are searched in several windows; numbers land across every window boundary.
  const pieces = fc.sample(fc.array(piece, { minLength: 20, maxLength: 40 }), { numRuns: 2500, seed: 8 });
  const input = Buffer.from(pieces.map((p) => p.join('')).join('\n'));
  assert.ok(input.length > 3 * 64 * 1024, `${input.length} bytes`);
  const exact = detect(input, 'exact');
  assert.ok(exact.length > 1000, `${exact.length} detections`);
  assert.deepEqual(detect(input, 'fast'), exact, 'one chunk');
  const chunks = [1024 * 1024, 65537, 65535, 7];
  assert.deepEqual(detect(input, 'fast', chunks), detect(input, 'exact', chunks), 'mixed chunks');
  // A number across the first window's end, at every offset: the next window must still see it whole.
  // One digit per group is the longest a number's first 12 digits can be written (23 bytes); a 12-digit
  // Maestro number written so has no 12 digits after its first, so only a window from its start finds it.
  const pan = allTestPans[0] as string;
  const maestro12 = withCheckDigit('67593141592');
  for (const written of [
    pan,
    pan.replace(/(\d{4})(?=\d)/g, '$1 '),
    [...pan].join('-'),
    [...maestro12].join(' '),
  ]) {
    for (let cut = 1; cut <= written.length + 2; cut++) {
      const text = Buffer.from(`${'x'.repeat(64 * 1024 - cut - 1)} ${written} y\n`);
      const exact = detect(text, 'exact');
      assert.equal(exact.length, 1);
      assert.deepEqual(detect(text, 'fast'), exact, `${cut} bytes of it before the window ends`);
    }
  }
  // Long spans of digits across window boundaries: a window's end must not cut a number in two.
  for (const shift of [0, 1, 5, 11, 12, 13, 22, 23, 24, 30]) {
    const filler = Buffer.alloc(64 * 1024 - shift, 'x');
    const long = Buffer.concat([filler, input.subarray(0, 200_000), filler, input.subarray(0, 50_000)]);
    assert.deepEqual(detect(long, 'fast'), detect(long, 'exact'), `shift ${shift}`);
  }
});

test('where stops come thick, the fast scan hands the rest of the chunk to the byte loop and finds the same', () => {
  // Escaped quotes and newlines (each one a stop) around JSON-escaped numbers: a stop every 15 bytes.
  const pans = fc.sample(cardNumber, { numRuns: 3000, seed: 9 });
  const input = Buffer.from(
    pans.map((pan) => `{"m":"\\"a\\" \\n","c":"${[...pan].map(escapeDigit).join('')}"}\n`).join(''),
  );
  for (const chunks of [[input.length], [1024 * 1024], [65536], [9000, 5000], [7001, 6007, 5003]]) {
    const exact = detect(input, 'exact', chunks);
    assert.equal(exact.length, pans.length);
    assert.deepEqual(detect(input, 'fast', chunks), exact, `chunks of ${chunks.join(', ')}`);
  }
});
