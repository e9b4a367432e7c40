import { version } from '../platform/version.ts';
import type { ScanConfig } from './config.ts';
import { runRules } from './engine.ts';
import {
  assessControls,
  type ControlAssessment,
  guidanceSections,
  pciRequirements,
} from './frameworks/frameworks.ts';
import type { ScanInputs } from './inputs/scan-inputs.ts';
import { allRules } from './rules/index.ts';
import type { Rule } from './rules/rule.ts';
import { type Finding, type Severity, severities, severityRank } from './types.ts';
import {
  annotationWaivers,
  applyWaivers,
  type InlineWaivers,
  objectKey,
  type WaiverFileEntry,
} from './waivers.ts';

/** Everything a reporter prints: the findings, the waivers' fate, and the framework view. */
export interface ScanReport {
  tool: { name: 'cardhold'; version: string };
  generatedAt: string;
  failOn: Severity;
  /** fail when an unwaived finding is at or above failOn, or a waiver has expired. */
  result: 'pass' | 'fail';
  summary: {
    files: number;
    documents: number;
    resources: number;
    workloads: number;
    findings: number;
    unwaived: number;
    waived: number;
    bySeverity: Record<Severity, number>;
  };
  warnings: string[];
  findings: Finding[];
  waivers: { expired: WaiverFileEntry[]; unused: WaiverFileEntry[] };
  controls: { pci: ControlAssessment[]; guidance: ControlAssessment[] };
  rules: readonly Rule[];
}

function inlineWaivers(inputs: ScanInputs): InlineWaivers {
  const byObject = new Map<string, Map<string, string>>();
  for (const resource of inputs.resources) {
    const waivers = annotationWaivers(resource);
    if (waivers.size > 0)
      byObject.set(
        objectKey(resource.source.file, resource.kind, resource.namespace, resource.name),
        waivers,
      );
  }
  for (const workload of inputs.workloads) {
    const waivers = annotationWaivers(workload.resource, workload.podAnnotations);
    if (waivers.size > 0) {
      const resource = workload.resource;
      byObject.set(
        objectKey(resource.source.file, resource.kind, resource.namespace, resource.name),
        waivers,
      );
    }
  }
  return { byObject, byFile: inputs.commentWaivers };
}

export function buildReport(
  inputs: ScanInputs,
  config: ScanConfig,
  waiverEntries: WaiverFileEntry[],
  now = new Date(),
  rules: readonly Rule[] = allRules,
): ScanReport {
  const raw = runRules(inputs, rules, config);
  const { findings, expired, unused } = applyWaivers(
    raw,
    inlineWaivers(inputs),
    waiverEntries,
    now.toISOString().slice(0, 10),
  );
  const bySeverity = Object.fromEntries(severities.map((s) => [s, 0])) as Record<Severity, number>;
  let unwaived = 0;
  let failing = false;
  for (const finding of findings) {
    if (finding.waiver) continue;
    unwaived++;
    bySeverity[finding.severity]++;
    if (severityRank(finding.severity) >= severityRank(config.failOn)) failing = true;
  }
  return {
    tool: { name: 'cardhold', version },
    generatedAt: now.toISOString(),
    failOn: config.failOn,
    result: failing || expired.length > 0 ? 'fail' : 'pass',
    summary: {
      files: inputs.files.size,
      documents: inputs.documents,
      resources: inputs.resources.length,
      workloads: inputs.workloads.length,
      findings: findings.length,
      unwaived,
      waived: findings.length - unwaived,
      bySeverity,
    },
    warnings: [...inputs.warnings],
    findings,
    waivers: { expired, unused },
    controls: {
      pci: assessControls(pciRequirements, rules, findings),
      guidance: assessControls(guidanceSections, rules, findings),
    },
    rules,
  };
}
