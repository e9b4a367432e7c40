import { redactPans } from '../shared/pan-detect.ts';
import type { ScanConfig } from './config.ts';
import type { ScanInputs } from './inputs/scan-inputs.ts';
import type { Rule } from './rules/rule.ts';
import type { Finding } from './types.ts';

/**
 * Runs rules over the model and turns their raw findings into located ones. Every message goes through
 * the card-number guard here, once, so that no reporter can print a full PAN a manifest contained.
 */
export function runRules(inputs: ScanInputs, rules: readonly Rule[], config: ScanConfig): Finding[] {
  const context = {
    resources: inputs.resources,
    workloads: inputs.workloads,
    dockerfiles: inputs.dockerfiles,
    composeServices: inputs.composeServices,
    config,
  };
  const findings: Finding[] = [];
  for (const rule of rules) {
    for (const raw of rule.check(context)) {
      const position = raw.line !== undefined ? { line: raw.line, column: 1 } : raw.source.locate(raw.path);
      const finding: Finding = {
        ruleId: rule.id,
        severity: rule.severity,
        message: redactPans(raw.message),
        file: raw.source.file,
        line: position.line,
        column: position.column,
      };
      if (raw.object) finding.object = raw.object;
      findings.push(finding);
    }
  }
  return findings.sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.ruleId.localeCompare(b.ruleId),
  );
}
