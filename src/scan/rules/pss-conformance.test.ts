import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultScanConfig } from '../config.ts';
import { runRules } from '../engine.ts';
import { ScanInputs } from '../inputs/scan-inputs.ts';
import { baselineRules } from './pss-baseline.ts';
import { restrictedRules } from './pss-restricted.ts';

// The Pod Security Admission project's own pass/fail pods (Kubernetes v1.37), in ../shared beside the
// repository root (CARDHOLD_SHARED_DIR names another place, for a checkout that lives elsewhere).
const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const shared = process.env['CARDHOLD_SHARED_DIR'] ?? path.join(repositoryRoot, '../shared');
const fixtures = path.join(shared, 'fixtures/psa');

const levels = { baseline: baselineRules, restricted: [...baselineRules, ...restrictedRules] };

test('the PSA fixtures are present at ../shared/fixtures/psa', () => {
  assert.ok(
    existsSync(path.join(fixtures, 'baseline/v1.37/pass')),
    `PSA conformance fixtures missing: expected ${fixtures}/{baseline,restricted}/v1.37/{pass,fail} (../shared from the repository root)`,
  );
});

for (const [level, rules] of Object.entries(levels)) {
  describe(`Pod Security Standards ${level} (v1.37 fixtures)`, () => {
    for (const outcome of ['pass', 'fail'] as const) {
      const folder = path.join(fixtures, level, 'v1.37', outcome);
      const files = existsSync(folder) ? readdirSync(folder).filter((name) => name.endsWith('.yaml')) : [];
      test(`${outcome}/ has fixtures`, () => assert.ok(files.length > 0, `no fixtures in ${folder}`));
      for (const file of files) {
        test(`${outcome}/${file}`, () => {
          const inputs = new ScanInputs();
          inputs.addYaml(readFileSync(path.join(folder, file), 'utf8'), file);
          assert.equal(inputs.workloads.length, 1);
          const findings = runRules(inputs, rules, defaultScanConfig);
          if (outcome === 'pass') {
            assert.deepEqual(
              findings.map((finding) => `${finding.ruleId}: ${finding.message}`),
              [],
            );
          } else {
            assert.ok(findings.length > 0, `${level} admitted ${file}, which it must reject`);
          }
        });
      }
    }
  });
}
