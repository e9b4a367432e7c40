import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capturedLogger } from '../../test/captured-logger.ts';
import { testCards, testCvvs } from '../../test/fixtures/cards.ts';
import { Secret } from './secret.ts';

const capture = () => capturedLogger('trace');

test('known sensitive fields, secrets and stray card numbers never reach the log line', () => {
  const { lines, logger } = capture();
  const pan = testCards.mastercard;
  logger.info({ pan, cvv: testCvvs.three }, 'fields by name');
  logger.info({ body: { card: { number: pan } } }, 'nested card');
  logger.info({ wrapped: new Secret(pan) }, 'secret object');
  logger.warn(`message text with ${pan} inside`);
  logger.error({ err: new Error(`parser said: unexpected token near "${pan}"`) }, 'error with card data');
  logger.info({ url: `/v1/tokens/${pan.replace(/(\d{4})(?=\d)/g, '$1 ')}` }, 'spaced');
  logger.info({ authorization: 'Bearer sk_test_abc' }, 'credential');
  assert.equal(lines.length, 7);
  for (const line of lines) {
    assert.ok(!line.replace(/[ -]/g, '').includes(pan), `leaked: ${line.replace(/\d/g, '#')}`);
    assert.ok(!line.includes(`"${testCvvs.three}"`));
    assert.ok(!line.includes('sk_test_abc'));
  }
  assert.match(lines[3] ?? '', /\[REDACTED:PAN\]/);
  // ISO timestamps: epoch milliseconds are 13 digits and would be a false positive.
  assert.match(lines[0] ?? '', /"time":"\d{4}-\d\d-\d\dT/);
});
