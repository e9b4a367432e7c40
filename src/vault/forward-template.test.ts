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
  assert.equal(render(template, values, 'xml'), 'name=Ada &quot;A&amp;B&quot; \\ Lovelace&m=07');
  for (const type of ['application/xml', 'text/xml; charset=utf-8', 'application/soap+xml']) {
    assert.equal(encodingFor(type), 'xml', type);
  }
  // A name cannot close the element it fills and add one of its own.
  const injected = { ...values, 'card.holder_name': "</name><amount>1</amount><x a='" } as CardValues;
  assert.equal(
    render('<name>{{card.holder_name}}</name>', injected, 'xml'),
    '<name>&lt;/name&gt;&lt;amount&gt;1&lt;/amount&gt;&lt;x a=&apos;</name>',
  );
});

test('only the known placeholders are accepted, and the field is named', () => {
  assert.deepEqual([...placeholdersIn('{{card.number}} {{card.cvv}}', 'body')], ['card.number', 'card.cvv']);
  assert.throws(
    () => placeholdersIn('{{card.pin}}', 'request.body'),
    (e: unknown) =>
      e instanceof CardholdError && e.code === 'forward_template_invalid' && e.field === 'request.body',
  );
});
