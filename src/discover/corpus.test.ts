import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Planted, trapLines, writeCorpus } from '../../test/fixtures/discover-corpus.ts';
import { discover, discoverOptions } from './discover.ts';
import type { Finding } from './finding.ts';
import { maskDigits } from './masking.ts';
import { scanValue } from './text-scan.ts';

let root: string;
let planted: Planted[];

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cardhold-discover-corpus-'));
  planted = await writeCorpus(root);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function scan(paths: string[]) {
  const findings: Finding[] = [];
  const result = await discover(discoverOptions({ paths }), {
    finding: (f) => findings.push(f),
    end: () => {},
  });
  return { findings, ...result };
}

const relative = (f: Finding) =>
  f.source === 'file'
    ? path.relative(root, f.path.split('!')[0] as string) +
      f.path.slice((f.path.split('!')[0] as string).length)
    : '';

test('corpus: every planted number is found, in every encoding and container, and nothing else', async () => {
  const { findings, summary, exitCode } = await scan([root]);
  const got = findings.map((f) => `${relative(f)}:${f.line} ${f.masked}`).sort();
  const want = planted.map((p) => `${p.path}:${p.line} ${maskDigits(p.pan)}`).sort();
  assert.deepEqual(got, want);
  assert.ok(planted.length >= 40, `${planted.length} planted`);
  assert.equal(summary.errors, 0);
  assert.equal(exitCode, 1);
  // Several brands, both UTF-16 byte orders, JSON escapes and separators are among them.
  assert.ok(new Set(findings.map((f) => f.brand)).size >= 8);
  assert.deepEqual(new Set(findings.map((f) => f.encoding)), new Set(['utf-8', 'utf-16le', 'utf-16be']));
  assert.ok(findings.some((f) => f.json_escaped) && findings.some((f) => f.separated));
  assert.ok(findings.every((f) => !f.test_card));
});

test('corpus: the trap files alone give no finding', async () => {
  const { findings, exitCode } = await scan([path.join(root, 'clean')]);
  assert.deepEqual(findings, []);
  assert.equal(exitCode, 0);
});

test('traps: every trap line, many times over with fresh random parts, is ignored', () => {
  const hits: string[] = [];
  const sink = {
    finding: (f: Finding) => hits.push(`${f.line}: ${f.brand} ${f.masked}`),
    warning: () => {},
    error: () => {},
    scanned: () => {},
  };
  const lines: string[] = [];
  for (let i = 0; i < 200; i++) lines.push(...trapLines());
  scanValue(Buffer.from(lines.join('\n')), { source: 'stdin', path: '-' }, sink);
  assert.deepEqual(hits, [], lines.filter((_, i) => hits.some((h) => h.startsWith(`${i + 1}:`))).join('\n'));
});

test('column and line are those of the first digit', async () => {
  const { findings } = await scan([path.join(root, 'plain')]);
  const spaced = findings.find((f) => relative(f) === 'plain/spaced.txt');
  assert.equal(spaced?.column, 6); // "card 4…"
  assert.equal(spaced?.confidence, 'high');
  const utf16 = await scan([path.join(root, 'utf16')]);
  assert.ok(
    utf16.findings.every((f) => f.line === 7 && f.column === 15),
    JSON.stringify(utf16.findings),
  );
});
