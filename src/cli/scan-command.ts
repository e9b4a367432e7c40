import type { Command } from 'commander';
import { runScan, type ScanCommandOptions } from '../scan/run-scan.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `cardhold scan`: the compliance scanner (docs/scanner.md). */
export function registerScanCommand(program: Command): void {
  program
    .command('scan [paths...]')
    .description(
      'check Dockerfiles, Compose files, Kubernetes manifests (or a live cluster) against PCI DSS-mapped rules',
    )
    .option('--format <format>', 'text, json, sarif, junit or html', 'text')
    .option('--out <file>', 'write the report to a file instead of standard output')
    .option(
      '--fail-on <severity>',
      'exit 1 on an unwaived finding at or above: info, low, medium, high, critical',
    )
    .option('--waivers <file>', 'waiver file (rule, selector, owner, reason, expires)')
    .option('--cluster', 'also scan the live cluster of the current kubeconfig context')
    .option('--namespace <ns...>', 'with --cluster: only these namespaces')
    .option('--config <file>', 'scanner configuration (allowed registries, CDE label, required labels)')
    .action(async (paths: string[], options: Omit<ScanCommandOptions, 'paths'>) => {
      const code = await runScan(
        { ...options, paths },
        { stdout: process.stdout, stderr: process.stderr, readStdin },
      );
      process.exitCode = code;
    });
}
