import { redactPans } from '../shared/pan-detect.ts';
import type { ScanConfig } from './config.ts';
import type { ScanInputs } from './inputs/scan-inputs.ts';
import type { RawFinding, Rule } from './rules/rule.ts';
import type { Finding, Position } from './types.ts';

/** The default locale's collation, as `localeCompare` uses it, built once rather than per comparison. */
const collator = new Intl.Collator();

/**
 * Runs rules over the model and turns their raw findings into located ones. Every message goes through
 * the card-number guard here, once, so that no reporter can print a full PAN a manifest contained.
 * Findings are located file by file (a fast-path YAML file is parsed again for its positions once, not
 * once per rule), then kept in the order the rules gave them before the final sort.
 */
export function runRules(inputs: ScanInputs, rules: readonly Rule[], config: ScanConfig): Finding[] {
  const context = {
    resources: inputs.resources,
    workloads: inputs.workloads,
    dockerfiles: inputs.dockerfiles,
    composeServices: inputs.composeServices,
    config,
  };
  const raws: { rule: Rule; raw: RawFinding }[] = [];
  for (const rule of rules) for (const raw of rule.check(context)) raws.push({ rule, raw });
  const byFile = new Map<string, number[]>();
  for (const [index, { raw }] of raws.entries()) {
    const list = byFile.get(raw.source.file);
    if (list) list.push(index);
    else byFile.set(raw.source.file, [index]);
  }
  const positions: Position[] = new Array(raws.length);
  for (const indexes of byFile.values()) {
    for (const index of indexes) {
      const { raw } = raws[index] as { raw: RawFinding };
      positions[index] = raw.line !== undefined ? { line: raw.line, column: 1 } : raw.source.locate(raw.path);
    }
  }
  const findings = raws.map(({ rule, raw }, index): Finding => {
    const position = positions[index] as Position;
    const finding: Finding = {
      ruleId: rule.id,
      severity: rule.severity,
      message: redactPans(raw.message),
      file: raw.source.file,
      line: position.line,
      column: position.column,
    };
    if (raw.object) finding.object = raw.object;
    return finding;
  });
  return findings.sort(
    (a, b) => collator.compare(a.file, b.file) || a.line - b.line || collator.compare(a.ruleId, b.ruleId),
  );
}
