import { Command } from 'commander';
import { ConfigError, describeConfig } from '../config/config.ts';
import { version } from '../platform/version.ts';
import { connectAs } from '../storage/database-target.ts';
import { startEmbeddedPostgres } from '../storage/embedded-postgres.ts';
import { migrate } from '../storage/migrate.ts';
import { configOrExit, loggerFor, runRoles } from './run-roles.ts';

const program = new Command()
  .name('cardhold')
  .description('Card-data vault and payments platform for containers and Kubernetes (PCI DSS v4.0.1)')
  .version(version);

program
  .command('start')
  .description('run the vault, api and test acquirer in one process on embedded defaults (development)')
  .action(() => runRoles(['vault', 'api', 'acquirer'], { demo: true }));

program
  .command('vault')
  .description('run the vault role (the cardholder data environment)')
  .action(() => runRoles(['vault'], { demo: false }));
program
  .command('api')
  .description('run the api role')
  .action(() => runRoles(['api'], { demo: false }));
program
  .command('acquirer')
  .description('run the test acquirer role')
  .action(() => runRoles(['acquirer'], { demo: false }));

program
  .command('migrate')
  .description(
    'apply database migrations with CARDHOLD_DATABASE_URL (or the embedded database in development)',
  )
  .action(async () => {
    const config = configOrExit();
    const logger = await loggerFor(config);
    let stopEmbedded: (() => Promise<void>) | undefined;
    let sql: ReturnType<typeof connectAs>;
    if (config.databaseUrl) {
      sql = connectAs({ kind: 'url', url: config.databaseUrl.expose() }, undefined, {
        applicationName: 'cardhold-migrate',
        max: 1,
      });
    } else if (config.mode === 'development') {
      const embedded = await startEmbeddedPostgres(config.dataDir, logger);
      stopEmbedded = () => embedded.stop();
      sql = connectAs(
        embedded.target,
        { user: embedded.adminUser, password: embedded.adminPassword },
        { applicationName: 'cardhold-migrate', max: 1 },
      );
    } else {
      throw new ConfigError('CARDHOLD_DATABASE_URL', 'is required to migrate in production mode');
    }
    try {
      const result = await migrate(sql);
      process.stdout.write(
        result.applied.length === 0
          ? `cardhold: database is at migration ${result.current}, nothing to apply\n`
          : `cardhold: applied ${result.applied.map((m) => `${String(m.version).padStart(3, '0')}_${m.name}`).join(', ')}\n`,
      );
    } finally {
      await sql.end();
      await stopEmbedded?.();
    }
  });

program
  .command('config')
  .description('print the effective configuration (secrets show only whether they are set)')
  .action(() => {
    process.stdout.write(JSON.stringify(describeConfig(configOrExit()), null, 2) + '\n');
  });

program.parseAsync().catch((error: unknown) => {
  const message =
    error instanceof ConfigError ? `configuration error: ${error.message}` : (error as Error).message;
  process.stderr.write(`cardhold: ${message}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
