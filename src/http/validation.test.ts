import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ErrorObject } from 'ajv';
import { allTestPans } from '../../test/fixtures/cards.ts';
import { compileValidator, toFieldErrors } from './validation.ts';

const schema = {
  type: 'object',
  properties: {
    pan: { type: 'string' },
    metadata: { type: 'object', additionalProperties: { type: 'string', maxLength: 5 } },
  },
  additionalProperties: false,
};

function fieldsOf(body: unknown): string[] {
  const validate = compileValidator({ schema, httpPart: 'body' });
  assert.equal(validate(body), false);
  return toFieldErrors(validate.errors as ErrorObject[], 'body').map((e) => e.field);
}

test('unknown fields are named when they are names; a key that could carry card data is never echoed', () => {
  assert.deepEqual(fieldsOf({ pan: 'x', address_line2: 'y' }), ['address_line2']);
  const pan = allTestPans[0] as string;
  for (const key of [
    pan,
    pan.replace(/(\d{4})(?=\d)/g, '$1 '),
    pan.replace(/(\d{4})(?=\d)/g, '$1  '),
    'cvv737',
    `a${'b'.repeat(64)}`,
  ]) {
    const fields = fieldsOf({ pan: 'x', [key]: 1 });
    assert.deepEqual(fields, ['*'], key.replace(/\d/g, '#'));
  }
  // Keys inside the path (a metadata key whose value is too long) are treated the same way.
  assert.deepEqual(fieldsOf({ metadata: { order: 'toolong' } }), ['metadata.order']);
  assert.deepEqual(fieldsOf({ metadata: { [pan]: 'toolong' } }), ['metadata.*']);
});
