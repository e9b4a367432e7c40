import { writeFile } from 'node:fs/promises';
import { defaultScanConfig, loadScanConfig } from './config.ts';
import { readPaths } from './inputs/files.ts';
import { ScanInputs } from './inputs/scan-inputs.ts';
import { InputError } from './inputs/yaml-source.ts';
import { renderHtml } from './reporters/html.ts';
import { renderJson } from './reporters/json.ts';
import { renderJunit } from './reporters/junit.ts';
import { renderSarif } from './reporters/sarif.ts';
import { renderText } from './reporters/text.ts';
import { buildReport } from './scan.ts';
import { isSeverity } from './types.ts';
import { loadWaiverFile } from './waivers.ts';

export const formats = ['text', 'json', 'sarif', 'junit', 'html'] as const;
export type Format = (typeof formats)[number];

export interface ScanCommandOptions {
  paths: string[];
  format: string;
  out?: string;
  failOn?: string;
  waivers?: string;
  cluster?: boolean;
  namespace?: string[];
  config?: string;
  kubectl?: string;
  helm?: string;
}

export interface ScanIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  readStdin(): Promise<string>;
  now?: Date;
}

/** Exit codes: 0 no failing finding, 1 findings at or above --fail-on (or an expired waiver), 2 usage or input error. */
export async function runScan(options: ScanCommandOptions, io: ScanIo): Promise<number> {
  try {
    if (!(formats as readonly string[]).includes(options.format))
      throw new InputError(`--format must be one of ${formats.join(', ')}`);
    if (options.failOn !== undefined && !isSeverity(options.failOn))
      throw new InputError('--fail-on must be one of info, low, medium, high, critical');
    if (options.paths.length === 0 && !options.cluster)
      throw new InputError('name files or directories to scan, - for standard input, or --cluster');
    const config = options.config ? await loadScanConfig(options.config) : { ...defaultScanConfig };
    if (options.failOn) config.failOn = options.failOn as typeof config.failOn;
    const waivers = options.waivers ? await loadWaiverFile(options.waivers) : [];
    const inputs = new ScanInputs();
    const progress = io.stderr.isTTY
      ? (count: number) => count % 200 === 0 && io.stderr.write(`\rcardhold scan: ${count} files read…`)
      : undefined;
    const files = options.paths.filter((p) => p !== '-');
    if (options.paths.includes('-')) {
      const text = await io.readStdin();
      if (/^\s*FROM\s/im.test(text) && !/^\s*(apiVersion|services)\s*:/m.test(text))
        inputs.addDockerfile(text, '<stdin>');
      else inputs.addYaml(text, '<stdin>');
    }
    await readPaths(files, inputs, {
      kubectl: options.kubectl,
      helm: options.helm,
      onFile: progress || undefined,
    });
    if (options.cluster) {
      // Loaded only here: the Kubernetes client takes longer to load than most scans take to run.
      const { readCluster } = await import('./inputs/cluster.ts');
      await readCluster(inputs, { namespaces: options.namespace ?? [] });
    }
    if (progress) io.stderr.write('\r\u001b[K');
    const report = buildReport(inputs, config, waivers, io.now);
    for (const warning of report.warnings) io.stderr.write(`cardhold scan: warning: ${warning}\n`);
    const format = options.format as Format;
    const output =
      format === 'json'
        ? renderJson(report)
        : format === 'sarif'
          ? renderSarif(report)
          : format === 'junit'
            ? renderJunit(report)
            : format === 'html'
              ? renderHtml(report)
              : renderText(report, { color: !options.out && io.stdout.isTTY === true });
    if (options.out) await writeFile(options.out, output);
    else io.stdout.write(output);
    return report.result === 'fail' ? 1 : 0;
  } catch (error) {
    if (error instanceof InputError || (error as NodeJS.ErrnoException).code !== undefined) {
      io.stderr.write(`cardhold scan: ${(error as Error).message}\n`);
      return 2;
    }
    throw error;
  }
}
