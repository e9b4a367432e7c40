import type { ControlAssessment } from '../frameworks/frameworks.ts';
import type { ScanReport } from '../scan.ts';
import type { Finding } from '../types.ts';
import { escapeMarkup as x } from './escape.ts';

/** A self-contained HTML report for assessors: no scripts, no external resources, grouped by framework. */
const outcomeLabel: Record<ControlAssessment['outcome'], string> = {
  fail: 'Fails',
  pass: 'Automated checks pass',
  'pass-needs-evidence': 'Automated part passes; needs evidence',
  'needs-evidence': 'Needs evidence',
  'not-applicable': 'Not applicable',
};

function findingRow(f: Finding): string {
  const object = f.object
    ? `${f.object.kind} ${f.object.namespace ? `${f.object.namespace}/` : ''}${f.object.name}${f.object.container ? ` [${f.object.container}]` : ''}`
    : '';
  const waiver = f.waiver
    ? `waived: ${f.waiver.reason}${f.waiver.owner ? ` (${f.waiver.owner}, until ${f.waiver.expires})` : ''}`
    : '';
  return `<tr class="${f.waiver ? 'waived' : f.severity}"><td>${x(f.severity)}</td><td><code>${x(f.ruleId)}</code></td><td>${x(f.file)}:${f.line}</td><td>${x(object)}</td><td>${x(f.message)}</td><td>${x(waiver)}</td></tr>`;
}

function controlSection(
  title: string,
  id: string,
  list: ControlAssessment[],
  findings: Finding[],
  groupOf: (a: ControlAssessment) => string,
): string {
  const groups = new Map<string, ControlAssessment[]>();
  for (const assessment of list)
    groups.set(groupOf(assessment), [...(groups.get(groupOf(assessment)) ?? []), assessment]);
  const body = [...groups]
    .map(([group, items]) => {
      const rows = items
        .map((a) => {
          const related = findings.filter((f) => !f.waiver && a.rules.some((r) => r.id === f.ruleId));
          const rules = a.rules
            .map((r) => `<code>${x(r.id)}</code> (${r.strength}${r.failing ? `, ${r.failing} failing` : ''})`)
            .join(', ');
          const details =
            related.length > 0
              ? `<details><summary>${related.length} findings</summary><table>${related.map(findingRow).join('')}</table></details>`
              : '';
          return `<tr class="outcome-${a.outcome}" data-control="${x(a.control.id)}"><td>${x(a.control.id)}</td><td>${x(a.control.title)}</td><td>${x(a.control.status)}</td><td>${outcomeLabel[a.outcome]}</td><td>${rules || '—'}${details}</td></tr>`;
        })
        .join('\n');
      return `<h3>${x(group)}</h3>\n<table><thead><tr><th>id</th><th>control</th><th>status</th><th>outcome</th><th>rules</th></tr></thead><tbody>\n${rows}\n</tbody></table>`;
    })
    .join('\n');
  return `<section id="${id}"><h2>${x(title)}</h2>\n${body}</section>`;
}

export function renderHtml(report: ScanReport): string {
  const s = report.summary;
  const pciGroup = (a: ControlAssessment) => `Requirement ${a.control.id.split('.')[0]}`;
  const guidanceGroup = (a: ControlAssessment) => a.control.area ?? '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cardhold scan report</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}
.outcome-fail td:nth-child(4),.critical td:first-child,.high td:first-child{color:#b00020;font-weight:600}
.outcome-pass td:nth-child(4){color:#1b5e20}.waived{color:#777}code{font-size:90%}
</style></head><body>
<h1>cardhold scan report</h1>
<p>Generated ${x(report.generatedAt)} by cardhold ${x(report.tool.version)}. Result: <strong id="result">${report.result === 'fail' ? 'FAIL' : 'pass'}</strong> (fail on ${x(report.failOn)} and above).</p>
<p id="summary">${s.files} files, ${s.resources} objects, ${s.workloads} workloads; ${s.unwaived} findings, ${s.waived} waived.</p>
<p><strong>This report is not a statement of compliance.</strong> It shows which automatable controls pass on the scanned configuration and which need evidence for the assessor.</p>
${report.warnings.length > 0 ? `<h2>Not scanned</h2><ul>${report.warnings.map((w) => `<li>${x(w)}</li>`).join('')}</ul>` : ''}
${report.waivers.expired.length > 0 ? `<h2>Expired waivers</h2><ul>${report.waivers.expired.map((w) => `<li><code>${x(w.rule)}</code> owner ${x(w.owner)}, expired ${x(w.expires)}: ${x(w.reason)}</li>`).join('')}</ul>` : ''}
${controlSection('By PCI DSS v4.0.1 requirement', 'pci', report.controls.pci, report.findings, pciGroup)}
${controlSection('By PCI container guidance area', 'guidance', report.controls.guidance, report.findings, guidanceGroup)}
<section id="findings"><h2>All findings</h2><table><thead><tr><th>severity</th><th>rule</th><th>where</th><th>object</th><th>message</th><th>waiver</th></tr></thead><tbody>
${report.findings.map(findingRow).join('\n')}
</tbody></table></section>
</body></html>
`;
}
