import { Command } from 'commander';
import { version } from '../platform/version.ts';
import { registerScanCommand } from './scan-command.ts';

/**
 * `cardhold scan` without the rest of the CLI: bin/cardhold.js comes here when the first argument is
 * `scan`, so that a scan does not load the vault, payments and database modules (loading them costs
 * more CPU time and memory than scanning thousands of manifests). Same command, options and errors as
 * main.ts gives it (the scanner raises no configuration errors of the platform's kind).
 */
const program = new Command()
  .name('cardhold')
  .description('Card-data vault and payments platform for containers and Kubernetes (PCI DSS v4.0.1)')
  .version(version);

registerScanCommand(program);

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`cardhold: ${(error as Error).message}\n`);
  process.exit(1);
});
