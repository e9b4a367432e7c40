import type { ScanReport } from '../scan.ts';

/** The JSON report: schema `cardhold-scan-report/1` (reporters/report.schema.json, docs/scanner.md). */
export function toJsonReport(report: ScanReport): unknown {
  const titles = new Map(report.rules.map((rule) => [rule.id, rule.title]));
  const controls = (list: ScanReport['controls']['pci']) =>
    list.map(({ control, outcome, rules }) => ({
      id: control.id,
      title: control.title,
      status: control.status,
      outcome,
      rules,
    }));
  return {
    schema: 'cardhold-scan-report/1',
    tool: report.tool,
    generatedAt: report.generatedAt,
    failOn: report.failOn,
    result: report.result,
    summary: report.summary,
    warnings: report.warnings,
    findings: report.findings.map((finding) => ({
      ...finding,
      title: titles.get(finding.ruleId) ?? finding.ruleId,
    })),
    waivers: report.waivers,
    controls: {
      'pci-dss-4.0.1': controls(report.controls.pci),
      'pci-container-guidance': controls(report.controls.guidance),
    },
    rules: report.rules.map((rule) => ({
      id: rule.id,
      title: rule.title,
      severity: rule.severity,
      family: rule.family,
      mapping: 'none' in rule.mapping ? { none: rule.mapping.none } : rule.mapping,
    })),
  };
}

export function renderJson(report: ScanReport): string {
  return `${JSON.stringify(toJsonReport(report), null, 2)}\n`;
}
