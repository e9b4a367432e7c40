import type { ScanReport } from '../scan.ts';
import type { Severity } from '../types.ts';

/** SARIF 2.1.0: file and line as the physical location; kind, namespace, name and container as the logical one. */
const level: Record<Severity, 'error' | 'warning' | 'note'> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
  info: 'note',
};
const securitySeverity: Record<Severity, string> = {
  critical: '9.5',
  high: '8.0',
  medium: '5.5',
  low: '3.0',
  info: '1.0',
};

export function renderSarif(report: ScanReport): string {
  const index = new Map(report.rules.map((rule, i) => [rule.id, i]));
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'cardhold-scan',
            version: report.tool.version,
            informationUri: 'https://github.com/cardhold/cardhold/blob/main/docs/scanner.md',
            rules: report.rules.map((rule) => ({
              id: rule.id,
              name: rule.id.replace(/[^A-Za-z0-9]+(.)/g, (_, c: string) => c.toUpperCase()),
              shortDescription: { text: rule.title },
              fullDescription: { text: rule.rationale },
              help: { text: rule.remediation },
              defaultConfiguration: { level: level[rule.severity] },
              properties: {
                'security-severity': securitySeverity[rule.severity],
                tags: ['security', rule.family],
                ...('none' in rule.mapping
                  ? {}
                  : { pci: Object.keys(rule.mapping.pci), guidance: Object.keys(rule.mapping.guidance) }),
              },
            })),
          },
        },
        results: report.findings.map((finding) => {
          const object = finding.object;
          const logical = object
            ? [
                {
                  name: object.container ?? object.name,
                  fullyQualifiedName: [object.namespace ?? '', object.kind, object.name, object.container]
                    .filter((part) => part !== undefined)
                    .join('/'),
                  kind: object.container ? 'member' : 'resource',
                },
              ]
            : undefined;
          return {
            ruleId: finding.ruleId,
            ruleIndex: index.get(finding.ruleId) ?? 0,
            level: level[finding.severity],
            message: { text: finding.message },
            locations: [
              {
                physicalLocation: {
                  artifactLocation: { uri: finding.file.split('\\').join('/') },
                  region: { startLine: finding.line, startColumn: finding.column },
                },
                ...(logical ? { logicalLocations: logical } : {}),
              },
            ],
            ...(finding.waiver
              ? {
                  suppressions: [
                    {
                      kind: finding.waiver.source === 'inline' ? 'inSource' : 'external',
                      justification: finding.waiver.reason,
                    },
                  ],
                }
              : {}),
          };
        }),
      },
    ],
  };
  return `${JSON.stringify(sarif, null, 2)}\n`;
}
