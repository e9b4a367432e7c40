import type { ScanReport } from '../scan.ts';
import { escapeMarkup as x } from './escape.ts';

/** JUnit XML: one test suite per rule, one failing test case per unwaived finding, one passing case otherwise. */
export function renderJunit(report: ScanReport): string {
  const suites = report.rules.map((rule) => {
    const findings = report.findings.filter((finding) => finding.ruleId === rule.id);
    const failing = findings.filter((finding) => !finding.waiver);
    const cases =
      findings.length === 0
        ? [`    <testcase classname="${x(rule.id)}" name="${x(rule.title)}"/>`]
        : findings.map((finding) => {
            const where = `${finding.file}:${finding.line}`;
            const name =
              `${where} ${finding.object ? `${finding.object.kind}/${finding.object.name}` : ''}`.trim();
            const body = finding.waiver
              ? `<skipped message="${x(`waived: ${finding.waiver.reason}`)}"/>`
              : `<failure type="${x(finding.severity)}" message="${x(finding.message)}">${x(`${where}: ${finding.message}\n${rule.remediation}`)}</failure>`;
            return `    <testcase classname="${x(rule.id)}" name="${x(name)}" file="${x(finding.file)}" line="${finding.line}">${body}</testcase>`;
          });
    return `  <testsuite name="${x(rule.id)}" tests="${Math.max(findings.length, 1)}" failures="${failing.length}" skipped="${findings.length - failing.length}">\n${cases.join('\n')}\n  </testsuite>`;
  });
  const tests = report.rules.reduce(
    (sum, rule) => sum + Math.max(report.findings.filter((f) => f.ruleId === rule.id).length, 1),
    0,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="cardhold scan" tests="${tests}" failures="${report.summary.unwaived}">\n${suites.join('\n')}\n</testsuites>\n`;
}
