import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { allTestPans, testCards } from '../../test/fixtures/cards.ts';
import { detectInChunks } from '../../test/fixtures/detect-in-chunks.ts';
import { randomPan } from '../../test/fixtures/discover-corpus.ts';
import { luhnValid } from '../shared/pan-detect.ts';
import { detectBrand } from '../vault/card-brands.ts';
import { matchCard } from './card-match.ts';
import type { Detection } from './detector.ts';
import type { Finding } from './finding.ts';
import { maskDigits } from './masking.ts';
import { isPublicTestPan, listPublicTestPans } from './test-cards.ts';
import { scanValue, TextScanner } from './text-scan.ts';

const detect = (input: Buffer, chunkSizes?: number[]): Detection[] => detectInChunks(input, chunkSizes);
const detectText = (text: string) => detect(Buffer.from(text));

function scanBytes(bytes: Buffer): Finding[] {
  const found: Finding[] = [];
  scanValue(
    bytes,
    { source: 'stdin', path: '-' },
    {
      finding: (f) => found.push(f),
      warning: () => {},
      error: () => {},
      scanned: () => {},
    },
  );
  return found;
}

test('the public test-card list includes every number of test/fixtures/cards.ts, each a valid card', () => {
  for (const pan of allTestPans) assert.ok(isPublicTestPan(pan), maskDigits(pan));
  for (const pan of listPublicTestPans()) {
    const match = matchCard(pan);
    assert.ok(match?.testCard, `${maskDigits(pan)} is a Luhn-valid number in its brand's range and length`);
  }
});

test('test cards are reported as test, other valid cards not; brand and masking', () => {
  const [visa] = detectText(`pan ${testCards.visa}`);
  assert.equal(visa?.testCard, true);
  assert.equal(visa?.brand, 'visa');
  assert.equal(visa?.masked, '424242******4242');
  const pan = randomPan();
  const [other] = detectText(`x ${pan} y`);
  assert.equal(other?.testCard, false);
  assert.equal(other?.masked, maskDigits(pan));
});

test('word boundaries, decimals, identifiers, groups and windows', () => {
  const pan = testCards.mastercard;
  const spaced = pan.replace(/(\d{4})(?=\d)/g, '$1 ');
  for (const text of [
    pan,
    `card=${pan};`,
    `"${pan}"`,
    `(${pan})`,
    `${pan}.`,
    `${spaced} 12/27 123`,
    `qty 2 ${spaced}`,
    `${pan} 123`,
    `${pan.replace(/(\d{4})(?=\d)/g, '$1-')}`,
  ]) {
    assert.equal(detectText(text).length, 1, text);
  }
  for (const text of [
    `x${pan}`,
    `${pan}y`,
    `tok_${pan}`,
    `id-${pan}`,
    `${pan}-abc`,
    `0.${pan}`,
    `${pan}.5`,
    `1${pan}`,
    `${pan}00000`,
    `${pan.slice(0, 8)}  ${pan.slice(8)}`,
  ]) {
    assert.equal(detectText(text).length, 0, text.replace(/\d/g, '#'));
  }
  assert.equal(detectText(`${spaced} ${spaced}`).length, 2, 'two cards in one run');
});

test('a number split across chunks at every position is found once, with the same line and column', () => {
  const pan = randomPan();
  const texts = [
    `line one\nthe card: ${pan} end\n`,
    `{"card":"${[...pan].map((d) => `\\u00${(48 + Number(d)).toString(16)}`).join('')}"}\n`,
    `a\nb ${pan.replace(/(\d{4})(?=\d)/g, '$1 ')}\n`,
  ];
  for (const text of texts) {
    const input = Buffer.from(text);
    const whole = detect(input);
    assert.equal(whole.length, 1, text);
    for (let split = 1; split < input.length; split++) {
      const parts = detect(input, [split, input.length]);
      assert.deepEqual(parts, whole, `split at ${split}`);
    }
    assert.deepEqual(detect(input, [1]), whole, 'one byte at a time');
    assert.deepEqual(detect(input, [3, 1, 7]), whole);
  }
});

test('UTF-16 split at odd offsets, JSON escapes of separators', () => {
  const pan = randomPan();
  const le = Buffer.from(`\ufeffcard ${pan}\n`, 'utf16le');
  for (const size of [1, 3, 5, 4097]) {
    const found: Finding[] = [];
    const sink = { finding: (f: Finding) => found.push(f), warning() {}, error() {}, scanned() {} };
    const scanner = new TextScanner({ source: 'stdin', path: '-' }, sink);
    for (let at = 0; at < le.length; at += size) scanner.push(le.subarray(at, at + size));
    scanner.end();
    assert.equal(found.length, 1, `chunk ${size}`);
    assert.equal(found[0]?.encoding, 'utf-16le');
    assert.equal(found[0]?.column, 6);
  }
  const escapedSpaces = pan.replace(/(\d{4})(?=\d)/g, '$1\\u0020');
  assert.equal(scanBytes(Buffer.from(`{"c":"${escapedSpaces}"}`)).length, 1);
});

test('confidence: high with a card keyword, medium for a usual card, low for a broad range', () => {
  const visa = randomPan({ brand: 'visa', prefix: '4', length: 16 });
  assert.equal(detectText(`card_number=${visa}`)[0]?.confidence, 'high');
  assert.equal(detectText(`{"cc":"${visa}"}`)[0]?.confidence, 'high');
  assert.equal(detectText(`value ${visa}`)[0]?.confidence, 'medium');
  const maestro = randomPan({ brand: 'maestro', prefix: '6759', length: 12 });
  assert.equal(detectText(`value ${maestro}`)[0]?.confidence, 'low');
  assert.equal(detectText(`company ${maestro}`)[0]?.confidence, 'low', '"pan" inside a word is not context');
});

test('trivial sequences are rejected even when Luhn-valid in a brand range', () => {
  const trivial: string[] = [];
  for (let length = 12; length <= 19; length++) {
    for (let d = 0; d <= 9; d++) trivial.push(String(d).repeat(length));
    for (let start = 0; start <= 9; start++) {
      trivial.push(Array.from({ length }, (_, i) => (start + i) % 10).join(''));
      trivial.push(Array.from({ length }, (_, i) => (start - i + 100) % 10).join(''));
    }
  }
  const otherwiseCards = trivial.filter((t) => {
    const info = detectBrand(t);
    return luhnValid(t) && info.brand !== 'unknown' && info.lengths.includes(t.length);
  });
  assert.ok(otherwiseCards.length > 0, 'some trivial sequences pass Luhn and IIN, so the rule is doing work');
  for (const t of trivial) assert.equal(detectText(`n ${t} n`).length, 0, t);
});

test('property: any valid card planted anywhere in random text, in any encoding, is found and masked', () => {
  const noise = fc
    .string({ maxLength: 60, unit: 'grapheme' })
    .map((s) => s.replace(/[0-9A-Za-z_\\.+-]/g, ' '));
  fc.assert(
    fc.property(
      noise,
      noise,
      fc.constantFrom('utf8', 'utf16le', 'utf16be', 'json', 'spaced', 'dashed'),
      fc.integer({ min: 1, max: 64 }),
      (before, afterText, encoding, chunk) => {
        const pan = randomPan();
        const shown =
          encoding === 'json'
            ? [...pan].map((d) => `\\u00${(48 + Number(d)).toString(16)}`).join('')
            : encoding === 'spaced'
              ? pan.replace(/(\d{4})(?=\d)/g, '$1 ')
              : encoding === 'dashed'
                ? pan.replace(/(\d{4})(?=\d)/g, '$1-')
                : pan;
        const text = `${before} ${shown} ${afterText}`;
        let bytes = Buffer.from(text, encoding === 'utf16le' || encoding === 'utf16be' ? 'utf16le' : 'utf8');
        if (encoding === 'utf16be') bytes = Buffer.from(bytes).swap16();
        if (encoding.startsWith('utf16'))
          bytes = Buffer.concat([
            encoding === 'utf16le' ? Buffer.from([0xff, 0xfe]) : Buffer.from([0xfe, 0xff]),
            bytes,
          ]);
        const found: Finding[] = [];
        const scanner = new TextScanner(
          { source: 'stdin', path: '-' },
          { finding: (f) => found.push(f), warning() {}, error() {}, scanned() {} },
        );
        for (let at = 0; at < bytes.length; at += chunk) scanner.push(bytes.subarray(at, at + chunk));
        scanner.end();
        assert.equal(found.length, 1, `${encoding} ${JSON.stringify(text.replace(/\d/g, '#'))}`);
        assert.equal(found[0]?.masked, maskDigits(pan));
        assert.ok(!JSON.stringify(found).includes(pan));
      },
    ),
    { numRuns: 400 },
  );
});
