import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { testCards } from '../../test/fixtures/cards.ts';
import { type Planted, randomPan, writeCorpus } from '../../test/fixtures/discover-corpus.ts';
import { defaultContainerLimits } from './containers.ts';
import { discover, discoverOptions } from './discover.ts';
import type { WalkOptions } from './file-walker.ts';
import type { Notice } from './finding.ts';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/cardhold.js');

function cardhold(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [bin, 'discover', ...args],
      { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin ?? '');
  });
}

let root: string;
let planted: Planted[];
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cardhold-discover-cli-'));
  planted = await writeCorpus(path.join(root, 'corpus'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** No planted number, whole or with its separators removed, anywhere in what the command wrote. */
function assertNoFullNumber(output: string, pans: readonly string[]): void {
  const squeezed = output.replace(/[\s-]|\\u00/g, '');
  for (const pan of pans) {
    assert.ok(!output.includes(pan) && !squeezed.includes(pan), 'a full card number reached the output');
  }
}

test('every format reports every planted number masked, and no full number anywhere; exit 1', async () => {
  const corpus = path.join(root, 'corpus');
  const pans = planted.map((p) => p.pan);
  const text = await cardhold([corpus]);
  assert.equal(text.code, 1, text.stderr);
  assert.equal(text.stdout.split('\n').filter((l) => / \(\w+ confidence\)$/.test(l)).length, planted.length);
  assertNoFullNumber(text.stdout + text.stderr, pans);

  const json = await cardhold([corpus, '--format', 'json']);
  assert.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as {
    findings: { masked: string; path: string }[];
    summary: { findings: number };
  };
  assert.equal(report.findings.length, planted.length);
  assert.equal(report.summary.findings, planted.length);
  assert.ok(report.findings.every((f) => /^\d{0,6}\*{6,}\d{4}$/.test(f.masked)));
  assertNoFullNumber(json.stdout + json.stderr, pans);

  const out = path.join(root, 'report.sarif');
  const sarif = await cardhold([corpus, '--format', 'sarif', '--out', out]);
  assert.equal(sarif.code, 1);
  assert.equal(sarif.stdout, '');
  const written = await readFile(out, 'utf8');
  const log = JSON.parse(written) as {
    version: string;
    runs: {
      results: { ruleId: string; locations: unknown[] }[];
      invocations: { executionSuccessful: boolean }[];
    }[];
  };
  assert.equal(log.version, '2.1.0');
  assert.equal(log.runs[0]?.results.length, planted.length);
  assert.ok(
    log.runs[0]?.results.every((r) => r.ruleId === 'cardhold.card-number' && r.locations.length === 1),
  );
  assert.equal(log.runs[0]?.invocations[0]?.executionSuccessful, true);
  assertNoFullNumber(written + sarif.stderr, pans);
});

test('test cards fail the run unless allowed; a clean input exits 0', async () => {
  const file = path.join(root, 'fixture.log');
  await writeFile(file, `card ${testCards.visa} and ${testCards.amex}\n`);
  const strict = await cardhold([file]);
  assert.equal(strict.code, 1);
  assert.match(strict.stdout, /424242\*{6}4242 \(test card\)/);
  const allowed = await cardhold([file, '--allow-test-cards']);
  assert.equal(allowed.code, 0, allowed.stdout);
  assert.match(allowed.stdout, /test card, allowed/);
  await writeFile(file, 'nothing here 2024-01-15T10:20:30Z\n');
  assert.equal((await cardhold([file])).code, 0);
});

test('standard input, file names holding a card number, and errors are masked', async () => {
  const pan = randomPan();
  const stdin = await cardhold(['--stdin', '--format', 'json'], `log line with ${pan}\n`);
  assert.equal(stdin.code, 1);
  const finding = (JSON.parse(stdin.stdout) as { findings: { source: string; path: string; line: number }[] })
    .findings[0];
  assert.deepEqual([finding?.source, finding?.path, finding?.line], ['stdin', '-', 1]);
  const named = path.join(root, `export-${pan}.txt`);
  await writeFile(named, 'clean\n');
  const missing = path.join(root, `missing-${pan}.txt`);
  const r = await cardhold([named, missing, '--format', 'json']);
  assert.equal(r.code, 2, 'an unreadable input with nothing found exits 2');
  assertNoFullNumber(r.stdout + r.stderr + stdin.stdout + stdin.stderr, [pan]);
  assert.match(r.stdout, /ENOENT/);
});

test('usage errors exit 2', async () => {
  assert.equal((await cardhold([])).code, 2);
  assert.equal((await cardhold([root, '--format', 'xml'])).code, 2);
});

test('include, exclude and size limits narrow the scan, with warnings', async () => {
  const corpus = path.join(root, 'corpus');
  const onlyGz = await scanWith([corpus], { include: ['*.gz'] });
  assert.ok(
    onlyGz.findings.length > 0 && onlyGz.findings.every((f) => f.path.split('!')[0]?.endsWith('.gz')),
  );
  const noArchives = await scanWith([corpus], { exclude: ['archives', 'utf16/**'] });
  assert.ok(noArchives.findings.length > 0 && noArchives.findings.every((f) => f.path.includes('/plain/')));
  const small = await scanWith([corpus], { maxFileSize: 10 });
  assert.equal(small.findings.length, 0);
  assert.ok(small.warnings.some((w) => /max-file-size/.test(w.message)));
  assert.equal(small.exitCode, 0);
  const shallow = await scanWith([path.join(corpus, 'archives', 'nested.tar.gz')], {}, 1);
  assert.ok(shallow.warnings.some((w) => /nested deeper than 1/.test(w.message)));
});

async function scanWith(paths: string[], walk: Partial<WalkOptions>, maxArchiveDepth = 5) {
  const findings: { path: string }[] = [];
  let warnings: readonly Notice[] = [];
  const { exitCode } = await discover(
    discoverOptions({
      paths,
      walk: { ...discoverOptions().walk, ...walk },
      limits: { ...defaultContainerLimits, maxArchiveDepth },
    }),
    {
      finding: (f) => findings.push({ path: f.source === 'file' ? f.path : '' }),
      end: (_summary, w) => {
        warnings = w;
      },
    },
  );
  return { findings, warnings, exitCode };
}
