import { allRules } from './rules/index.ts';

/** The rule table of docs/scanner.md, generated from the rules themselves (a test keeps the doc in step). */
export function ruleTableMarkdown(): string {
  const rows = allRules.map((rule) => {
    const mapping =
      'none' in rule.mapping
        ? `none: ${rule.mapping.none}`
        : `PCI ${Object.keys(rule.mapping.pci).join(', ') || '—'}; guidance ${Object.keys(rule.mapping.guidance).join(', ') || '—'}`;
    return `| \`${rule.id}\` | ${rule.severity} | ${rule.title} | ${mapping} |`;
  });
  return ['| id | severity | rule | maps to |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
