import type { ControlAssessment } from '../frameworks/frameworks.ts';
import type { ScanReport } from '../scan.ts';
import type { Severity } from '../types.ts';

const colours: Record<Severity, string> = { critical: '35', high: '31', medium: '33', low: '36', info: '37' };

/** Human text, grouped by file; ANSI colour only when writing to a terminal. */
export function renderText(report: ScanReport, options: { color: boolean }): string {
  const paint = (code: string, text: string) => (options.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const lines: string[] = [];
  for (const warning of report.warnings) lines.push(paint('33', `warning: ${warning}`));
  const byFile = new Map<string, typeof report.findings>();
  for (const finding of report.findings)
    byFile.set(finding.file, [...(byFile.get(finding.file) ?? []), finding]);
  for (const [file, findings] of byFile) {
    lines.push('', paint('1', file));
    for (const f of findings) {
      const object = f.object
        ? ` ${f.object.kind}/${f.object.namespace ? `${f.object.namespace}/` : ''}${f.object.name}${f.object.container ? `[${f.object.container}]` : ''}`
        : '';
      const severity = paint(colours[f.severity], f.severity.toUpperCase().padEnd(8));
      const waived = f.waiver ? paint('2', ` (waived: ${f.waiver.reason})`) : '';
      lines.push(`  ${String(f.line).padStart(4)}  ${severity} ${f.ruleId}${object}: ${f.message}${waived}`);
    }
  }
  for (const entry of report.waivers.expired)
    lines.push(
      paint(
        '31',
        `expired waiver: ${entry.rule} (owner ${entry.owner}, expired ${entry.expires}): ${entry.reason}`,
      ),
    );
  for (const entry of report.waivers.unused)
    lines.push(paint('33', `unused waiver: ${entry.rule} (owner ${entry.owner}) matched no finding`));
  const count = (list: ControlAssessment[], outcome: ControlAssessment['outcome']) =>
    list.filter((a) => a.outcome === outcome).length;
  const framework = (name: string, list: ControlAssessment[]) =>
    `${name}: ${count(list, 'pass')} automated controls pass, ${count(list, 'pass-needs-evidence')} pass their automated part and need evidence, ${count(list, 'fail')} fail, ${count(list, 'needs-evidence')} need evidence only`;
  const s = report.summary;
  lines.push(
    '',
    `${s.files} files, ${s.documents} documents, ${s.resources} objects, ${s.workloads} workloads: ${s.unwaived} findings (${
      Object.entries(s.bySeverity)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ') || 'none'
    }), ${s.waived} waived`,
    framework('PCI DSS v4.0.1', report.controls.pci),
    framework('PCI container guidance', report.controls.guidance),
    'This is not a statement of compliance: controls that need evidence are for the assessor.',
    report.result === 'fail'
      ? paint('31', `result: FAIL (--fail-on ${report.failOn})`)
      : paint('32', `result: pass (--fail-on ${report.failOn})`),
  );
  return `${lines.join('\n').replace(/^\n/, '')}\n`;
}
