import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allRules } from '../rules/index.ts';
import { assessControls, guidanceSections, pciRequirements, rulesMappedTo } from './frameworks.ts';

test('every mapped id exists in the framework data, and every rule maps or says why not', () => {
  const pci = new Set(pciRequirements.map((r) => r.id));
  const guidance = new Set(guidanceSections.map((s) => s.id));
  for (const rule of allRules) {
    if ('none' in rule.mapping) {
      assert.ok(rule.mapping.none.length > 10, `${rule.id}: an explicit "none" mapping needs its reason`);
      continue;
    }
    assert.ok(
      Object.keys(rule.mapping.pci).length + Object.keys(rule.mapping.guidance).length > 0,
      `${rule.id} maps nothing`,
    );
    for (const id of Object.keys(rule.mapping.pci))
      assert.ok(pci.has(id), `${rule.id} maps unknown PCI DSS requirement ${id}`);
    for (const id of Object.keys(rule.mapping.guidance))
      assert.ok(guidance.has(id), `${rule.id} maps unknown guidance section ${id}`);
  }
});

test('the guidance data has the 16 areas and each control a known status; automated controls have a direct rule', () => {
  assert.equal(new Set(guidanceSections.map((s) => s.area)).size, 16);
  for (const control of [...pciRequirements, ...guidanceSections]) {
    assert.ok(
      ['automated', 'partial', 'manual-evidence', 'not-applicable'].includes(control.status),
      control.id,
    );
    if (control.status === 'automated') {
      assert.ok(
        rulesMappedTo(control, allRules).some((m) => m.strength === 'direct'),
        `${control.framework} ${control.id} is "automated" but no rule maps to it directly`,
      );
    }
  }
});

test('an assessment never passes a manual control and fails a control whose rule has an unwaived finding', () => {
  const finding = {
    ruleId: 'secrets.env-literal',
    severity: 'high' as const,
    message: 'm',
    file: 'f',
    line: 1,
    column: 1,
  };
  const outcomes = new Map(
    assessControls(pciRequirements, allRules, [finding]).map((a) => [a.control.id, a.outcome]),
  );
  assert.equal(outcomes.get('8.6.2'), 'fail');
  assert.equal(outcomes.get('8.4.2'), 'needs-evidence');
  const waived = { ...finding, waiver: { source: 'file' as const, reason: 'r' } };
  assert.equal(
    new Map(assessControls(pciRequirements, allRules, [waived]).map((a) => [a.control.id, a.outcome])).get(
      '8.6.2',
    ),
    'pass',
  );
});
