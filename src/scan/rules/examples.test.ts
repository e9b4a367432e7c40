import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultScanConfig } from '../config.ts';
import { runRules } from '../engine.ts';
import { ScanInputs } from '../inputs/scan-inputs.ts';
import { allRules } from './index.ts';
import type { RuleExample } from './rule.ts';

function findingsOf(ruleId: string, example: RuleExample) {
  const inputs = new ScanInputs();
  if (example.format === 'dockerfile') inputs.addDockerfile(example.text, 'Dockerfile');
  else inputs.addYaml(example.text, example.format === 'compose' ? 'compose.yaml' : 'manifest.yaml');
  const rule = allRules.find((candidate) => candidate.id === ruleId);
  assert.ok(rule);
  return runRules(inputs, [rule], { ...defaultScanConfig, ...example.config });
}

test('rule ids are unique and every rule has good and bad examples', () => {
  const ids = allRules.map((rule) => rule.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const rule of allRules) {
    assert.ok(rule.examples.good.length > 0, `${rule.id} has no good example`);
    assert.ok(rule.examples.bad.length > 0, `${rule.id} has no bad example`);
  }
});

for (const rule of allRules) {
  describe(rule.id, () => {
    rule.examples.good.forEach((example, index) => {
      test(`good example ${index + 1} passes`, () => {
        assert.deepEqual(
          findingsOf(rule.id, example).map((f) => f.message),
          [],
        );
      });
    });
    rule.examples.bad.forEach((example, index) => {
      test(`bad example ${index + 1} is flagged, at a line of the example`, () => {
        const findings = findingsOf(rule.id, example);
        assert.ok(findings.length > 0, `${rule.id} did not flag:\n${example.text}`);
        const lines = example.text.split('\n').length;
        for (const finding of findings) assert.ok(finding.line >= 1 && finding.line <= lines);
      });
    });
  });
}
