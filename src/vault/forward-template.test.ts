import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CardholdError } from '../shared/errors.ts';
import { type CardValues, encodingFor, placeholders, placeholdersIn, render } from './forward-template.ts';

const values = Object.fromEntries(placeholders.map((p) => [p, ''])) as CardValues;
values['card.holder_name'] = 'Ada "A&B" \\ Lovelace';
values['card.exp_month_2'] = '07';

test('values are escaped for where they stand: JSON strings, form values, or as they are', () => {
  const template = 'name={{card.holder_name}}&m={{ card.exp_month_2 }}';
  assert.equal(render(template, values, 'json'), 'name=Ada \\"A&B\\" \\\\ Lovelace&m=07');
  assert.equal(render(template, values, 'form'), 'name=Ada%20%22A%26B%22%20%5C%20Lovelace&m=07');
  assert.equal(render(template, values, 'raw'), 'name=Ada "A&B" \\ Lovelace&m=07');
  assert.equal(encodingFor('application/json; charset=utf-8'), 'json');
  assert.equal(encodingFor('application/vnd.processor+json'), 'json');
  assert.equal(encodingFor('application/x-www-form-urlencoded'), 'form');
  assert.equal(encodingFor(undefined), 'raw');
});

test('only the known placeholders are accepted, and the field is named', () => {
  assert.deepEqual([...placeholdersIn('{{card.number}} {{card.cvv}}', 'body')], ['card.number', 'card.cvv']);
  assert.throws(
    () => placeholdersIn('{{card.pin}}', 'request.body'),
    (e: unknown) =>
      e instanceof CardholdError && e.code === 'forward_template_invalid' && e.field === 'request.body',
  );
});
