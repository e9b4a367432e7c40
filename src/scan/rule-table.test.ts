import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ruleTableMarkdown } from './rule-table.ts';

test('docs/scanner.md lists exactly the rules, ids and severities of the code', async () => {
  const doc = await readFile(new URL('../../docs/scanner.md', import.meta.url), 'utf8');
  const start = doc.indexOf('<!-- rules:start -->');
  const end = doc.indexOf('<!-- rules:end -->');
  assert.ok(start >= 0 && end > start, 'docs/scanner.md lacks the rules:start/rules:end markers');
  const table = doc.slice(start + '<!-- rules:start -->'.length, end).trim();
  assert.equal(
    table,
    ruleTableMarkdown(),
    'regenerate: npx tsx -e "import(\'./src/scan/rule-table.ts\').then(m => console.log(m.ruleTableMarkdown()))"',
  );
});
