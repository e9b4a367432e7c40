import { version } from '../platform/version.ts';
import { describeLocation, type Finding, type Notice } from './finding.ts';
import { redactDigitRuns } from './masking.ts';

export type ReportFormat = 'text' | 'json' | 'sarif';
export const reportFormats: readonly ReportFormat[] = ['text', 'json', 'sarif'];

export interface ScanSummary {
  findings: number;
  test_cards: number;
  /** Findings that make the exit status 1 (all of them, or all but the test cards with --allow-test-cards). */
  failing: number;
  files: number;
  bytes: number;
  warnings: number;
  errors: number;
  seconds: number;
}

/** Writes one format as the scan goes: findings are streamed, so memory does not grow with them. */
export interface Reporter {
  finding(finding: Finding, allowed: boolean): void;
  end(summary: ScanSummary, warnings: readonly Notice[], errors: readonly Notice[]): void;
}

/**
 * Findings and notices leave through `out`, once more masked, so that no run of 12+ digits reaches an
 * output even if a caller forgot; `raw` writes only text made of the summary's own counts.
 */
type Write = (text: string) => void;
interface Outputs {
  out: Write;
  raw: Write;
}

export function createReporter(format: ReportFormat, write: Write): Reporter {
  const outputs = { out: (text: string) => write(redactDigitRuns(text)), raw: write };
  switch (format) {
    case 'text':
      return new TextReporter(outputs);
    case 'json':
      return new JsonReporter(outputs);
    case 'sarif':
      return new SarifReporter(outputs);
  }
}

class TextReporter implements Reporter {
  private readonly out: Write;
  private readonly raw: Write;
  constructor({ out, raw }: Outputs) {
    this.out = out;
    this.raw = raw;
  }
  finding(f: Finding, allowed: boolean): void {
    const kind = f.test_card ? `test card${allowed ? ', allowed' : ''}` : `${f.confidence} confidence`;
    this.out(`${describeLocation(f)}:${f.line}:${f.column}: ${f.brand} ${f.masked} (${kind})\n`);
  }
  end(summary: ScanSummary, warnings: readonly Notice[], errors: readonly Notice[]): void {
    for (const w of warnings) this.out(`warning: ${w.source}: ${w.message}\n`);
    for (const e of errors) this.out(`error: ${e.source}: ${e.message}\n`);
    this.raw(
      `cardhold discover: ${summary.findings} card number${summary.findings === 1 ? '' : 's'} (${summary.test_cards} test), ` +
        `${summary.files} input${summary.files === 1 ? '' : 's'}, ${summary.bytes} bytes, ` +
        `${summary.warnings} warning${summary.warnings === 1 ? '' : 's'}, ${summary.errors} error${summary.errors === 1 ? '' : 's'}\n`,
    );
  }
}

class JsonReporter implements Reporter {
  private readonly out: Write;
  private readonly raw: Write;
  private first = true;
  constructor({ out, raw }: Outputs) {
    this.out = out;
    this.raw = raw;
    out(`{"tool":"cardhold discover","version":${JSON.stringify(version)},"findings":[`);
  }
  finding(f: Finding, allowed: boolean): void {
    this.out(`${this.first ? '\n' : ',\n'}${JSON.stringify({ ...f, allowed })}`);
    this.first = false;
  }
  end(summary: ScanSummary, warnings: readonly Notice[], errors: readonly Notice[]): void {
    this.out(`\n],"warnings":${JSON.stringify(warnings)},"errors":${JSON.stringify(errors)}`);
    this.raw(`,"summary":${JSON.stringify(summary)}}\n`);
  }
}

const sarifRules = [
  {
    id: 'cardhold.card-number',
    name: 'CardNumber',
    shortDescription: { text: 'Card number (PAN) stored in clear' },
    fullDescription: {
      text: 'A number in a card brand IIN range, at a length the brand issues, passing the Luhn check. PCI DSS 3.5.1 requires a PAN to be unreadable wherever it is stored.',
    },
    defaultConfiguration: { level: 'error' },
    helpUri: 'https://github.com/cardhold/cardhold/blob/main/docs/discover.md',
  },
  {
    id: 'cardhold.test-card-number',
    name: 'TestCardNumber',
    shortDescription: { text: 'Published test card number' },
    fullDescription: {
      text: 'A card network or processor test number. Not cardholder data, but it shows where card numbers flow.',
    },
    defaultConfiguration: { level: 'warning' },
    helpUri: 'https://github.com/cardhold/cardhold/blob/main/docs/discover.md',
  },
];

/** SARIF 2.1.0, one run; results stream inside `runs[0].results`, the invocation follows them. */
class SarifReporter implements Reporter {
  private readonly out: Write;
  private readonly raw: Write;
  private first = true;
  constructor({ out, raw }: Outputs) {
    this.out = out;
    this.raw = raw;
    const driver = {
      name: 'cardhold discover',
      version,
      informationUri: 'https://github.com/cardhold/cardhold',
      rules: sarifRules,
    };
    out(
      `{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[{"tool":{"driver":${JSON.stringify(driver)}},"columnKind":"unicodeCodePoints","results":[`,
    );
  }
  finding(f: Finding, allowed: boolean): void {
    const where = describeLocation(f);
    const result = {
      ruleId: f.test_card ? 'cardhold.test-card-number' : 'cardhold.card-number',
      ruleIndex: f.test_card ? 1 : 0,
      level: f.test_card ? (allowed ? 'note' : 'warning') : 'error',
      message: {
        text: `${f.test_card ? 'Test card number' : 'Card number'} ${f.masked} (${f.brand}, ${f.length} digits, ${f.confidence} confidence) in ${where}`,
      },
      locations: [sarifLocation(f)],
      properties: {
        source: f.source,
        brand: f.brand,
        length: f.length,
        masked: f.masked,
        confidence: f.confidence,
        test_card: f.test_card,
        allowed,
        encoding: f.encoding,
        separated: f.separated,
        json_escaped: f.json_escaped,
      },
    };
    this.out(`${this.first ? '\n' : ',\n'}${JSON.stringify(result)}`);
    this.first = false;
  }
  end(summary: ScanSummary, warnings: readonly Notice[], errors: readonly Notice[]): void {
    const notifications = [
      ...warnings.map((w) => ({ level: 'warning', message: { text: `${w.source}: ${w.message}` } })),
      ...errors.map((e) => ({ level: 'error', message: { text: `${e.source}: ${e.message}` } })),
    ];
    this.out(
      `\n],"invocations":[{"executionSuccessful":${summary.errors === 0},"toolExecutionNotifications":${JSON.stringify(notifications)}`,
    );
    this.raw(`,"properties":{"summary":${JSON.stringify(summary)}}}]}]}\n`);
  }
}

function sarifLocation(f: Finding): Record<string, unknown> {
  const region = { startLine: f.line, startColumn: f.column };
  if (f.source === 'file' || f.source === 'stdin') {
    // A member of an archive is located at the archive; the member path is in the logical location.
    const [outer, ...members] = f.path.split('!');
    const physical = {
      artifactLocation: { uri: toUri(outer ?? f.path) },
      ...(members.length === 0 ? { region } : {}),
    };
    return members.length === 0
      ? { physicalLocation: physical }
      : {
          physicalLocation: physical,
          logicalLocations: [{ fullyQualifiedName: f.path, kind: 'member' }],
          properties: region,
        };
  }
  if (f.source === 'postgres') {
    return {
      logicalLocations: [
        { fullyQualifiedName: `${f.database}/${f.table}.${f.db_column}[${f.row_key}]`, kind: 'column' },
      ],
      properties: region,
    };
  }
  return {
    logicalLocations: [
      { fullyQualifiedName: `${f.key}${f.field === null ? '' : ` ${f.field}`}`, kind: 'redisKey' },
    ],
    properties: region,
  };
}

function toUri(filePath: string): string {
  return filePath
    .split(/[\\/]/)
    .map((part) => encodeURIComponent(part))
    .join('/');
}
