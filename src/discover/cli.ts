import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { defaultContainerLimits } from './containers.ts';
import { discover } from './discover.ts';
import { readError } from './masking.ts';
import { Progress } from './progress.ts';
import { createReporter, type ReportFormat, reportFormats } from './reporters.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

/** `10485760`, `10M`, `1G`, `512k`: bytes with an optional binary suffix. */
export function parseByteSize(text: string): number {
  const m = /^(\d+)([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) throw new InvalidArgumentError('not a size in bytes (e.g. 1048576, 512K, 100M, 4G)');
  const power = ' kmgt'.indexOf((m[2] ?? '').toLowerCase() || ' ');
  return Number(m[1]) * 1024 ** power;
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError('not a positive whole number');
  return Number(text);
}

interface DiscoverCliOptions {
  stdin?: boolean;
  format: ReportFormat;
  out?: string;
  include: string[];
  exclude: string[];
  maxFileSize?: number;
  followSymlinks?: boolean;
  postgres?: string;
  redis?: string;
  redisMatch: string;
  sample?: number;
  allowTestCards?: boolean;
  maxArchiveDepth: number;
  maxArchiveBytes: number;
  progress: boolean;
}

/**
 * `cardhold discover`: exit 0 when nothing is found, 1 when a card number is (test cards too, unless
 * --allow-test-cards), 2 on a usage error or when an input could not be read and nothing was found.
 */
export function registerDiscoverCommand(program: Command): void {
  program
    .command('discover')
    .description(
      'find card numbers in files, archives, standard input, PostgreSQL and Redis (masked output; exit 1 when found)',
    )
    .argument('[paths...]', 'files and directories to scan recursively')
    .option('--stdin', 'scan standard input')
    .addOption(new Option('--format <format>', 'output format').choices(reportFormats).default('text'))
    .option('--out <file>', 'write the report to this file (mode 0600) instead of standard output')
    .option('--include <glob>', 'only files matching this glob (repeatable)', collect, [])
    .option('--exclude <glob>', 'skip files and directories matching this glob (repeatable)', collect, [])
    .option('--max-file-size <bytes>', 'skip larger files (e.g. 100M)', parseByteSize)
    .option('--follow-symlinks', 'follow symbolic links inside directories')
    .option('--postgres <url>', 'scan every text, JSON, bytea and numeric column of this database')
    .option('--redis <url>', 'scan the keys and values of this Redis')
    .option('--redis-match <pattern>', 'only Redis keys matching this SCAN pattern', '*')
    .option('--sample <rows>', 'scan a random sample of about this many rows per table', parseCount)
    .option('--allow-test-cards', 'report published test card numbers without failing on them')
    .option(
      '--max-archive-depth <n>',
      'open nested archives this deep',
      parseCount,
      defaultContainerLimits.maxArchiveDepth,
    )
    .option(
      '--max-archive-bytes <bytes>',
      'decompressed bytes allowed per input (zip-bomb cap)',
      parseByteSize,
      defaultContainerLimits.maxArchiveBytes,
    )
    .option('--no-progress', 'no progress line on a terminal')
    .exitOverride((error) => {
      // Commander has printed the problem; usage errors exit 2, as documented, and help exits 0.
      process.exit(error.exitCode === 0 ? 0 : 2);
    })
    .action(async (paths: string[], options: DiscoverCliOptions) => {
      process.exitCode = await runDiscoverCli(paths, options);
    });
}

async function runDiscoverCli(paths: string[], options: DiscoverCliOptions): Promise<number> {
  if (paths.length === 0 && !options.stdin && !options.postgres && !options.redis) {
    process.stderr.write('cardhold discover: nothing to scan: name paths, --stdin, --postgres or --redis\n');
    return 2;
  }
  if (options.sample !== undefined && !options.postgres) {
    process.stderr.write('cardhold discover: --sample applies to --postgres only\n');
    return 2;
  }
  const file = options.out ? createWriteStream(options.out, { flags: 'w', mode: 0o600 }) : undefined;
  if (file) await once(file, 'open');
  const out = file ?? process.stdout;
  const reporter = createReporter(options.format, (text) => out.write(text));
  const progress = options.progress ? new Progress(process.stderr) : undefined;
  try {
    const { summary, exitCode } = await discover(
      {
        paths,
        stdin: options.stdin ? (process.stdin as AsyncIterable<Buffer>) : undefined,
        walk: {
          include: options.include,
          exclude: options.exclude,
          maxFileSize: options.maxFileSize,
          followSymlinks: options.followSymlinks === true,
        },
        limits: {
          ...defaultContainerLimits,
          maxArchiveDepth: options.maxArchiveDepth,
          maxArchiveBytes: options.maxArchiveBytes,
        },
        postgres: options.postgres,
        redis: options.redis,
        redisMatch: options.redisMatch,
        sample: options.sample,
        allowTestCards: options.allowTestCards === true,
      },
      reporter,
      progress,
    );
    if (file || options.format !== 'text') {
      process.stderr.write(
        `cardhold discover: ${summary.findings} found (${summary.test_cards} test, ${summary.failing} failing), ${summary.errors} errors\n`,
      );
    }
    return exitCode;
  } catch (error) {
    progress?.stop();
    process.stderr.write(`cardhold discover: ${readError(error)}\n`);
    return 2;
  } finally {
    if (file) await new Promise<void>((resolve) => file.end(resolve));
    else if (!process.stdout.write('')) await once(process.stdout, 'drain');
  }
}
