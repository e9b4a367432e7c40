import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';

/**
 * `cardhold scan` runs from its own entry (src/cli/scan-main.ts) without loading the platform; it must
 * answer exactly as the full CLI (src/cli/main.ts) does.
 */
const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const work = await mkdtemp(path.join(os.tmpdir(), 'cardhold-scan-main-'));
after(() => rm(work, { recursive: true, force: true }));

async function node(args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, args, { cwd: work, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const viaBin = (args: string[]) => node([path.join(root, 'bin/cardhold.js'), 'scan', ...args]);
const viaFullCli = (args: string[]) => node([path.join(root, 'src/cli/main.ts'), 'scan', ...args]);

test('cardhold scan answers as the full CLI does: report, exit codes, usage errors, help', async () => {
  await writeFile(
    path.join(work, 'pod.yaml'),
    'apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: app\n    image: web\n    securityContext: {privileged: true}\n',
  );
  const cases = [
    ['pod.yaml', '--format', 'json'],
    ['pod.yaml', '--format', 'sarif', '--fail-on', 'critical'],
    ['missing.yaml'],
    ['--help'],
  ];
  const answers = [];
  for (const args of cases) {
    const mine = await viaBin(args);
    const full = await viaFullCli(args);
    const strip = (text: string) => text.replace(/"generatedAt": "[^"]+"/g, '');
    assert.deepEqual(
      { ...mine, stdout: strip(mine.stdout) },
      { ...full, stdout: strip(full.stdout) },
      args.join(' '),
    );
    answers.push(mine);
  }
  const [json, sarif, missing, help] = answers;
  const report = JSON.parse(json?.stdout ?? '') as { findings: { ruleId: string; line: number }[] };
  assert.equal(json?.code, 1);
  assert.ok(report.findings.some((f) => f.ruleId === 'pss.baseline.privileged' && f.line === 8));
  assert.equal(sarif?.code, 1);
  assert.equal(missing?.code, 2);
  assert.match(missing?.stderr ?? '', /missing\.yaml/);
  assert.match(help?.stdout ?? '', /--fail-on <severity>/);
});
