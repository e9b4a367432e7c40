import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { scanArtifacts } from './artifact-scan.ts';
import { testCards, testCvvs } from './fixtures/cards.ts';

test('the artifact scan finds planted card data and passes clean files', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-scan-'));
  try {
    await mkdir(path.join(dir, 'logs'));
    await writeFile(
      path.join(dir, 'logs', 'clean.log'),
      '{"msg":"request completed","status":201,"time":"2026-11-22T07:30:43.602Z"}\n',
    );
    assert.equal((await scanArtifacts(dir)).findings.length, 0);
    await writeFile(
      path.join(dir, 'logs', 'leak.log'),
      `ok\n{"card":"${testCards.amex.replace(/(\d{4})/g, '$1 ')}"}\n{"cvv":"${testCvvs.three}"}\n`,
    );
    const { files, findings } = await scanArtifacts(dir);
    assert.equal(files, 2);
    assert.deepEqual(
      findings.map((f) => [path.basename(f.file), f.line, f.kind]),
      [
        ['leak.log', 2, 'test-pan'],
        ['leak.log', 2, 'luhn-valid-run'],
        ['leak.log', 3, 'cvv-value'],
      ],
    );
    assert.ok(
      findings.every((f) => !f.sample.includes(testCards.amex)),
      'findings are masked',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
