import type { Rule, Strength } from '../rules/rule.ts';
import type { Finding } from '../types.ts';
import guidanceData from './container-guidance.json' with { type: 'json' };
import pciData from './pci-dss-4.0.1.json' with { type: 'json' };

export type ControlStatus = 'automated' | 'partial' | 'manual-evidence' | 'not-applicable';

export interface Control {
  framework: 'pci' | 'guidance';
  id: string;
  title: string;
  status: ControlStatus;
  /** Guidance area (1 … 16) of a guidance section. */
  area?: string;
}

export const pciRequirements: Control[] = pciData.requirements.map((r) => ({
  framework: 'pci',
  id: r.id,
  title: r.title,
  status: r.status as ControlStatus,
}));

export const guidanceSections: Control[] = guidanceData.areas.flatMap((area) =>
  area.sections.map((s) => ({
    framework: 'guidance' as const,
    id: s.id,
    title: s.title,
    status: s.status as ControlStatus,
    area: `${area.id}. ${area.title}`,
  })),
);

export function rulesMappedTo(
  control: Control,
  rules: readonly Rule[],
): { rule: Rule; strength: Strength }[] {
  const out: { rule: Rule; strength: Strength }[] = [];
  for (const rule of rules) {
    if ('none' in rule.mapping) continue;
    const strength = (control.framework === 'pci' ? rule.mapping.pci : rule.mapping.guidance)[control.id];
    if (strength) out.push({ rule, strength });
  }
  return out;
}

/**
 * What a scan says about one control. Never "compliant": automatable controls pass or fail on the rules
 * mapped to them; partial ones pass their automated part and still need evidence; manual ones need evidence.
 */
export type ControlOutcome = 'fail' | 'pass' | 'pass-needs-evidence' | 'needs-evidence' | 'not-applicable';

export interface ControlAssessment {
  control: Control;
  outcome: ControlOutcome;
  rules: { id: string; strength: Strength; failing: number }[];
}

export function assessControls(
  controls: readonly Control[],
  rules: readonly Rule[],
  findings: readonly Finding[],
): ControlAssessment[] {
  const failing = new Map<string, number>();
  for (const finding of findings) {
    if (!finding.waiver) failing.set(finding.ruleId, (failing.get(finding.ruleId) ?? 0) + 1);
  }
  return controls.map((control) => {
    const mapped = rulesMappedTo(control, rules).map(({ rule, strength }) => ({
      id: rule.id,
      strength,
      failing: failing.get(rule.id) ?? 0,
    }));
    let outcome: ControlOutcome;
    if (control.status === 'not-applicable') outcome = 'not-applicable';
    else if (mapped.some((rule) => rule.failing > 0)) outcome = 'fail';
    else if (control.status === 'automated') outcome = 'pass';
    else if (control.status === 'partial' && mapped.length > 0) outcome = 'pass-needs-evidence';
    else outcome = 'needs-evidence';
    return { control, outcome, rules: mapped };
  });
}
