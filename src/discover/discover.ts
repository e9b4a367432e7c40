import { type ContainerLimits, defaultContainerLimits, scanFile, scanStdin } from './containers.ts';
import type { WalkOptions } from './file-walker.ts';
import { walkFiles } from './file-walker.ts';
import type { DiscoverySink, Finding, Notice } from './finding.ts';
import { scanPostgres } from './postgres-source.ts';
import type { Progress } from './progress.ts';
import { scanRedis } from './redis-source.ts';
import type { Reporter, ScanSummary } from './reporters.ts';

export interface DiscoverOptions {
  paths: readonly string[];
  stdin: AsyncIterable<Buffer> | undefined;
  walk: WalkOptions;
  limits: ContainerLimits;
  postgres: string | undefined;
  redis: string | undefined;
  redisMatch: string;
  sample: number | undefined;
  /** Published test card numbers are still reported, but do not make the exit status 1. */
  allowTestCards: boolean;
}

/** Options with every default (nothing to scan) and the given ones over them. */
export function discoverOptions(overrides: Partial<DiscoverOptions> = {}): DiscoverOptions {
  return {
    paths: [],
    stdin: undefined,
    walk: { include: [], exclude: [], maxFileSize: undefined, followSymlinks: false },
    limits: defaultContainerLimits,
    postgres: undefined,
    redis: undefined,
    redisMatch: '*',
    sample: undefined,
    allowTestCards: false,
    ...overrides,
  };
}

/** Notices kept for the report; more are counted, not kept, so memory stays bounded. */
const maxNoticesKept = 1000;

/** 0: nothing found; 1: card numbers found; 2: nothing found but something could not be read. */
export type DiscoverExitCode = 0 | 1 | 2;

/** Runs every requested source through one sink and reporter. */
export async function discover(
  options: DiscoverOptions,
  reporter: Reporter,
  progress?: Progress,
): Promise<{ summary: ScanSummary; exitCode: DiscoverExitCode }> {
  const started = Date.now();
  const warnings: Notice[] = [];
  const errors: Notice[] = [];
  const summary: ScanSummary = {
    findings: 0,
    test_cards: 0,
    failing: 0,
    files: 0,
    bytes: 0,
    warnings: 0,
    errors: 0,
    seconds: 0,
  };
  const sink: DiscoverySink = {
    finding(finding: Finding) {
      const allowed = finding.test_card && options.allowTestCards;
      summary.findings++;
      if (finding.test_card) summary.test_cards++;
      if (!allowed) summary.failing++;
      if (progress) progress.findings++;
      reporter.finding(finding, allowed);
    },
    warning(notice) {
      summary.warnings++;
      if (warnings.length < maxNoticesKept) warnings.push(notice);
    },
    error(notice) {
      summary.errors++;
      if (errors.length < maxNoticesKept) errors.push(notice);
    },
    scanned(bytes) {
      summary.bytes += bytes;
      if (progress) progress.bytes += bytes;
    },
  };
  const input = () => {
    summary.files++;
    if (progress) progress.inputs++;
  };
  for await (const file of walkFiles(options.paths, options.walk, sink)) {
    input();
    await scanFile(file.filePath, file.displayName, options.limits, sink);
  }
  if (options.stdin) {
    input();
    await scanStdin(options.stdin, options.limits, sink);
  }
  if (options.postgres) {
    input();
    await scanPostgres({ url: options.postgres, sample: options.sample }, sink);
  }
  if (options.redis) {
    input();
    await scanRedis({ url: options.redis, match: options.redisMatch }, sink);
  }
  progress?.stop();
  summary.seconds = Math.round((Date.now() - started) / 10) / 100;
  reporter.end(summary, warnings, errors);
  const exitCode: DiscoverExitCode = summary.failing > 0 ? 1 : summary.errors > 0 ? 2 : 0;
  return { summary, exitCode };
}

export type { ContainerLimits };
