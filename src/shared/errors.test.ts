import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { toProblem } from '../http/problem.ts';
import { CardholdError, errorCatalog } from './errors.ts';

test('docs/errors.md lists every error code with its status, and nothing else', async () => {
  const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
  assert.deepEqual(
    rows,
    Object.entries(errorCatalog).map(([code, e]) => [code, e.status]),
  );
});

test('problems carry type, code, field and request id; unknown errors expose nothing', () => {
  const p = toProblem(new CardholdError('cvv_invalid', { field: 'cards[2].cvv' }), 'req-1');
  assert.equal(p.type, 'urn:cardhold:error:cvv_invalid');
  assert.equal(p.status, 422);
  assert.equal(p.field, 'cards[2].cvv');
  assert.equal(p.request_id, 'req-1');
  const hidden = toProblem(
    new Error('connection to 10.0.0.5 failed: password authentication for "vault"'),
    'req-2',
  );
  assert.equal(hidden.code, 'internal_error');
  assert.equal(hidden.status, 500);
  assert.ok(!JSON.stringify(hidden).includes('10.0.0.5'));
  const json = toProblem(
    Object.assign(new SyntaxError('Unexpected token in "4242…"'), { statusCode: 400 }),
    'req-3',
  );
  assert.equal(json.code, 'body_not_json');
  assert.ok(!JSON.stringify(json).includes('4242'));
});
