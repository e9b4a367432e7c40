import { createPublicKey, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { Sql } from 'postgres';
import { loadPublicSigningKeys } from '../audit/audit-keys.ts';
import type { AuditTrail } from '../audit/audit-trail.ts';
import type { Origin } from '../audit/events.ts';
import { exportRecords } from '../audit/export.ts';
import { openAudit } from '../audit/open-audit.ts';
import { type VerifyReport, verifyTrail } from '../audit/verify.ts';
import { Merchants } from '../auth/merchants.ts';
import { Operators, operatorRoles } from '../auth/operators/operators.ts';
import { roleNames, rolePermissions } from '../auth/permissions.ts';
import type { Scope } from '../auth/scopes.ts';
import { ConfigError, describeConfig } from '../config/config.ts';
import { registerDiscoverCommand } from '../discover/cli.ts';
import { type ControlRequest, findControlSockets, sendControl } from '../keys/control-socket.ts';
import type { KeyProvider } from '../keys/key-provider.ts';
import { initSealedKey } from '../keys/local-sealed-key-provider.ts';
import { openKeyProvider, pkcs11Options, sealedKeyFile } from '../keys/open-key-provider.ts';
import { version } from '../platform/version.ts';
import { migrate } from '../storage/migrate.ts';
import { openAdminDatabase } from './admin-database.ts';
import {
  registerKeyLifecycleCommands,
  registerMerchantFreezeCommands,
  rotateKeyVersion,
} from './keys-commands.ts';
import { configOrExit, loggerFor, runRoles } from './run-roles.ts';
import { registerScanCommand } from './scan-command.ts';

const program = new Command()
  .name('cardhold')
  .description('Card-data vault and payments platform for containers and Kubernetes (PCI DSS v4.0.1)')
  .version(version)
  // `cardhold --version` only before a command: `keys compromise|retire --version <n>` name a key version.
  .enablePositionalOptions();

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
    const database = await openAdminDatabase(config, logger, 'cardhold-migrate');
    const sql = database.sql;
    try {
      const result = await migrate(sql);
      process.stdout.write(
        result.applied.length === 0
          ? `cardhold: database is at migration ${result.current}, nothing to apply\n`
          : `cardhold: applied ${result.applied.map((m) => `${String(m.version).padStart(3, '0')}_${m.name}`).join(', ')}\n`,
      );
    } finally {
      await database.close();
    }
  });

const auditLog = program.command('audit-log').description('verify, export and inspect the audit trail');

auditLog
  .command('verify')
  .description(
    'check every record hash, chain link and checkpoint signature; exit 3 naming the first bad record',
  )
  .option('--from-checkpoint <id>', 'start from this checkpoint instead of the first record')
  .option(
    '--public-key <file>',
    'trust only these checkpoint-signing public keys (PEM, as `audit-log public-keys` printed them when kept safe); repeatable',
    (file: string, files: string[]) => [...files, file],
    [] as string[],
  )
  .option('--json', 'print the full report as JSON')
  .action(async (options: { fromCheckpoint?: string; publicKey: string[]; json?: boolean }) => {
    const trustedKeys = options.publicKey.length > 0 ? await readPublicKeys(options.publicKey) : undefined;
    await withAuditTools('verify', async ({ sql, record }) => {
      await record('audit.verify', options.fromCheckpoint ?? 'all');
      const report = await verifyTrail(sql, {
        ...(options.fromCheckpoint ? { fromCheckpoint: options.fromCheckpoint } : {}),
        ...(trustedKeys ? { trustedKeys } : {}),
      });
      if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else process.stdout.write(describeReport(report));
      if (!report.ok) process.exitCode = 3;
    });
  });

auditLog
  .command('export')
  .description('write the records of a time range as JSON lines (to stdout, or --out FILE)')
  .requiredOption('--from <time>', 'ISO 8601 start, inclusive')
  .requiredOption('--to <time>', 'ISO 8601 end, exclusive')
  .option('--out <file>', 'write to this new file (created 0600) instead of stdout')
  .action(async (options: { from: string; to: string; out?: string }) => {
    await withAuditTools('export', async ({ sql, record }) => {
      const range = { from: new Date(options.from), to: new Date(options.to) };
      await record('audit.read', `${options.from}/${options.to}`);
      const file = options.out ? createWriteStream(options.out, { flags: 'wx', mode: 0o600 }) : undefined;
      const out = file ?? process.stdout;
      const count = await exportRecords(sql, range, async (line) => {
        if (!out.write(line)) await once(out, 'drain');
      });
      if (file) await new Promise<void>((resolve) => file.end(resolve));
      process.stderr.write(`cardhold: exported ${count} audit records\n`);
    });
  });

auditLog
  .command('public-keys')
  .description('print the Ed25519 public keys that verify checkpoints (PEM)')
  .action(async () => {
    await withAuditTools('public-keys', async ({ sql }) => {
      for (const key of await loadPublicSigningKeys(sql)) {
        process.stdout.write(
          `# audit signing key version ${key.version}, created ${key.createdAt.toISOString()}\n`,
        );
        process.stdout.write(key.publicKey.export({ format: 'pem', type: 'spki' }).toString());
      }
    });
  });

/** Every PEM public key in the files (one file may hold several, as `audit-log public-keys` prints them). */
async function readPublicKeys(files: string[]): Promise<KeyObject[]> {
  const keys: KeyObject[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
    if (blocks.length === 0) throw new Error(`${file} holds no PEM public key`);
    keys.push(...blocks.map((pem) => createPublicKey(pem)));
  }
  return keys;
}

function describeReport(report: VerifyReport): string {
  const summary = `cardhold: ${report.records_checked} records in ${report.lanes_checked} lanes, ${report.checkpoints_checked} checkpoints checked\n`;
  const unpinned = report.keys_pinned
    ? ''
    : 'cardhold: checkpoint signatures were checked with the keys stored in the database; pass --public-key with keys kept elsewhere to prove they are authentic\n';
  if (report.ok) return `${summary}cardhold: the audit trail is intact\n${unpinned}`;
  const p = report.first_problem;
  const where = [
    p?.seq ? `record ${p.seq}` : '',
    p?.lane !== undefined ? `lane ${p.lane} position ${p.lane_seq}` : '',
    p?.checkpoint ? `checkpoint ${p.checkpoint}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `${summary}cardhold: the audit trail FAILED verification (${report.problems_total} problems); first: ${p?.kind} at ${where}: ${p?.detail}\n`;
}

/** Runs an audit-log command with an admin connection and a trail that records what it reads. */
/** The CLI as an audit actor: the operating-system user, from this host, running this command. */
interface CliServices {
  sql: Sql;
  provider: KeyProvider;
  trail: AuditTrail;
  who: { actor: { type: 'user'; id: string }; origin: Origin };
}

/**
 * Runs a command with an administrative connection, the key provider and an audit trail that records
 * what the command does (without start and stop records of its own), and closes them all after.
 */
async function withCliServices(
  command: string,
  run: (services: CliServices) => Promise<void>,
): Promise<void> {
  const config = configOrExit();
  const logger = await loggerFor(config);
  const database = await openAdminDatabase(config, logger, `cardhold-${command.replaceAll(' ', '-')}`);
  const provider = await openKeyProvider(config);
  try {
    const audit = await openAudit({
      sql: database.sql,
      provider,
      service: 'cli',
      config,
      logger,
      signCheckpoints: false,
      announce: false,
    });
    const who = {
      actor: { type: 'user' as const, id: `os:${userInfo().username}` },
      origin: { ...audit.trail.selfOrigin, userAgent: `cardhold ${command}` },
    };
    try {
      await run({ sql: database.sql, provider, trail: audit.trail, who });
    } finally {
      await audit.close();
    }
  } finally {
    await provider.close();
    await database.close();
  }
}

/** An audit-log command: it records its own read of the trail (PCI DSS 10.2.1.3). */
function withAuditTools(
  command: string,
  run: (tools: {
    sql: Sql;
    record: (action: 'audit.verify' | 'audit.read', resource: string) => Promise<void>;
  }) => Promise<void>,
): Promise<void> {
  return withCliServices(`audit-log ${command}`, ({ sql, trail, who }) =>
    run({
      sql,
      record: (action, resource) =>
        trail.record({
          action,
          ...who,
          resource: { type: 'audit_trail', id: resource },
          merchantId: null,
          outcome: 'success',
        }),
    }),
  );
}

const operatorsCommand = program.command('operators').description('operator accounts');

operatorsCommand
  .command('bootstrap')
  .description(
    'create the first security administrator (refused once any operator exists); the password is read from standard input',
  )
  .requiredOption('--username <name>', "the administrator's username")
  .option('--password-stdin', 'read the password from standard input (the only way; never an argument)')
  .action(async (options: { username: string }) => {
    const password = (await readStdin()).replace(/\r?\n$/, '');
    await withCliServices('operators bootstrap', async ({ sql, provider, trail, who }) => {
      const operators = await Operators.open({ sql, trail, provider });
      try {
        const created = await operators.bootstrap(options.username, password, who);
        process.stdout.write(
          `cardhold: security administrator ${created.username} (${created.id}) created; sign in at POST /v1/auth/login and enrol TOTP\n`,
        );
      } finally {
        operators.close();
      }
    });
  });

operatorsCommand
  .command('create')
  .description(
    'create an operator (they change the password and enrol TOTP at first sign-in); password on standard input',
  )
  .requiredOption('--username <name>', 'the username')
  .requiredOption('--role <role...>', `one or more of ${operatorRoles.join(', ')}`)
  .option('--merchant <id>', 'confine the operator to one merchant')
  .option('--password-stdin', 'read the initial password from standard input (the only way)')
  .action(async (options: { username: string; role: string[]; merchant?: string }) => {
    const password = (await readStdin()).replace(/\r?\n$/, '');
    await withOperators('operators create', async (operators, who) => {
      const created = await operators.create(who, {
        username: options.username,
        password,
        roles: options.role,
        merchantId: options.merchant ?? null,
      });
      printJson(created);
    });
  });

for (const [action, description] of [
  ['unlock', 'unlock an operator locked out by failed sign-ins'],
  ['disable', 'disable an operator and end their sessions'],
  ['reset-mfa', 'reset TOTP: the operator enrols again at the next sign-in'],
] as const) {
  operatorsCommand
    .command(`${action} <id>`)
    .description(description)
    .action(async (id: string) => {
      await withOperators(`operators ${action}`, async (operators, who) => {
        const done =
          action === 'unlock'
            ? await operators.unlock(who, id)
            : action === 'disable'
              ? await operators.disable(who, id)
              : await operators.resetMfa(who, id);
        printJson(done);
      });
    });
}

async function withOperators(
  command: string,
  run: (operators: Operators, who: CliServices['who']) => Promise<void>,
): Promise<void> {
  await withCliServices(command, async ({ sql, provider, trail, who }) => {
    const operators = await Operators.open({ sql, trail, provider });
    try {
      await run(operators, who);
    } finally {
      operators.close();
    }
  });
}

const merchantsCommand = program.command('merchants').description('merchants');

merchantsCommand
  .command('create')
  .description('create a merchant and its first secret key (the secret is shown once)')
  .requiredOption('--name <name>', "the merchant's name")
  .action(async (options: { name: string }) => {
    await withCliServices('merchants create', async ({ sql, trail, who }) => {
      const environment = configOrExit().mode === 'development' ? 'test' : 'live';
      const { merchant, apiKey } = await new Merchants(sql, trail).create(who, options.name, environment);
      printJson({ merchant, api_key: { ...apiKey, secret: apiKey.secret.expose() } });
    });
  });

merchantsCommand
  .command('show <id>')
  .description('a merchant and its keys (never their secrets)')
  .action(async (id: string) => {
    await withCliServices('merchants show', async ({ sql, trail, who }) => {
      const merchants = new Merchants(sql, trail);
      printJson({ merchant: await merchants.get(who, id), api_keys: await merchants.listKeys(who, id) });
    });
  });

const keysCommand = program.command('keys').description('merchant API keys, and the key lifecycle');

keysCommand
  .command('issue')
  .description('issue a secret or publishable key (the secret is shown once)')
  .requiredOption('--merchant <id>', 'the merchant')
  .option('--publishable', 'a publishable key (pk_…): tokenize only, from the allowed origins')
  .option('--origin <url...>', 'allowed browser origins of a publishable key')
  .option('--scope <scope...>', "scopes (default: the kind's default)")
  .option('--label <text>', 'a label')
  .action(
    async (options: {
      merchant: string;
      publishable?: boolean;
      origin?: string[];
      scope?: string[];
      label?: string;
    }) => {
      await withCliServices('keys issue', async ({ sql, trail, who }) => {
        const key = await new Merchants(sql, trail).issueKey(who, options.merchant, {
          kind: options.publishable ? 'publishable' : 'secret',
          scopes: options.scope as Scope[] | undefined,
          allowedOrigins: options.origin,
          label: options.label,
        });
        printJson({ ...key, secret: key.secret.expose() });
      });
    },
  );

keysCommand
  .command('rotate')
  .description(
    "issue an API key's successor (--key; the old key works until the overlap ends), or a new key version (--purpose)",
  )
  .option('--merchant <id>', 'the merchant')
  .option('--key <id>', 'the API key to rotate')
  .option('--purpose <purpose>', 'rotate a key-encrypting key instead: pan|cvv|fingerprint|audit|master')
  .option('--overlap-seconds <n>', 'how long the old key keeps working', '86400')
  .action(async (options: { merchant?: string; key?: string; overlapSeconds: string; purpose?: string }) => {
    if (options.purpose) return rotateKeyVersion(withCliServices, { ...options, purpose: options.purpose });
    if (!options.merchant || !options.key) throw new Error('--merchant and --key are required');
    const overlap = Number(options.overlapSeconds);
    if (!Number.isInteger(overlap) || overlap < 0 || overlap > 30 * 24 * 3600) {
      throw new Error('--overlap-seconds must be a whole number from 0 to 2592000');
    }
    await withCliServices('keys rotate', async ({ sql, trail, who }) => {
      const key = await new Merchants(sql, trail).rotateKey(
        who,
        options.merchant as string,
        options.key as string,
        overlap,
      );
      printJson({ ...key, secret: key.secret.expose() });
    });
  });

keysCommand
  .command('revoke')
  .description('revoke a key now')
  .requiredOption('--merchant <id>', 'the merchant')
  .requiredOption('--key <id>', 'the key')
  .action(async (options: { merchant: string; key: string }) => {
    await withCliServices('keys revoke', async ({ sql, trail, who }) => {
      printJson(await new Merchants(sql, trail).revokeKey(who, options.merchant, options.key));
    });
  });

// Key provider ceremonies and seal controls (docs/keys.md). `keys unseal|seal|seal-status` talk to the
// running processes' control sockets in the data directory; the actor is the person at the host.
const custodian = () => process.env['SUDO_USER'] || userInfo().username;

keysCommand
  .command('init')
  .description(
    'local-sealed: create the master key and split its unseal secret into --shares, --threshold of which unseal it; each share is printed once',
  )
  .requiredOption('--shares <n>', 'how many custodians hold a share')
  .requiredOption('--threshold <k>', 'how many shares unseal the key (at least 2)')
  .action(async (options: { shares: string; threshold: string }) => {
    const config = configOrExit();
    const file = sealedKeyFile(config);
    const { shares, sealId } = await initSealedKey({
      file,
      shares: Number(options.shares),
      threshold: Number(options.threshold),
      environment: config.mode,
    });
    process.stdout.write(
      `cardhold: ${config.mode} master key sealed in ${file} (seal ${sealId}); ${options.threshold} of ${options.shares} shares unseal it.\n` +
        'Give each share to a different custodian now. They are shown once and stored nowhere.\n\n',
    );
    shares.forEach((share, i) => {
      process.stdout.write(`custodian ${i + 1}: ${share}\n`);
    });
  });

keysCommand
  .command('init-hsm')
  .description(
    'pkcs11: create the master key inside the HSM token (--rotate: a new version that wraps from now on)',
  )
  .option('--rotate', 'add a new master key version when one exists')
  .action(async (options: { rotate?: boolean }) => {
    const config = configOrExit();
    const { Pkcs11KeyProvider } = await import('../keys/pkcs11-key-provider.ts');
    const provider = await Pkcs11KeyProvider.open(pkcs11Options(config), false);
    try {
      if (provider.versions.length > 0 && !options.rotate) {
        throw new Error(
          `the token already holds master key versions ${provider.versions.join(', ')}; use --rotate`,
        );
      }
      const version = provider.createMasterKey();
      process.stdout.write(
        `cardhold: master key version ${version} created in the token (AES-256, sensitive, non-extractable)\n`,
      );
    } finally {
      await provider.close();
    }
  });

async function toControlSockets(request: Omit<ControlRequest, 'user'>): Promise<void> {
  const sockets = await findControlSockets(configOrExit().dataDir);
  if (sockets.length === 0)
    throw new Error('no running cardhold process with a sealed key provider was found here');
  for (const socket of sockets) {
    const answer = await sendControl(socket, { ...request, user: custodian() });
    const name = path.basename(socket, '.sock');
    if (answer.ok) process.stdout.write(`${name}: ${JSON.stringify(answer.status)}\n`);
    else {
      process.stderr.write(`${name}: refused (${answer.code}): ${answer.detail}\n`);
      process.exitCode = 1;
    }
  }
}

keysCommand
  .command('unseal')
  .description(
    "submit this custodian's share (read from standard input, never an argument) to the running processes",
  )
  .action(async () => {
    const share = (await readStdin()).trim();
    await toControlSockets({ op: 'unseal', share });
  });

keysCommand
  .command('seal')
  .description('seal the running processes now (emergency): card data stops until custodians unseal again')
  .action(() => toControlSockets({ op: 'seal' }));

keysCommand
  .command('seal-status')
  .description('whether the running processes are sealed, and how many shares they hold')
  .action(() => toControlSockets({ op: 'status' }));
// Key lifecycle (issue 6): rewrap, retire, compromise, status, inventory; merchant freeze.
registerKeyLifecycleCommands(keysCommand, withCliServices);
registerMerchantFreezeCommands(merchantsCommand, withCliServices);

program
  .command('roles')
  .description('the roles and the permissions each holds')
  .action(() => {
    for (const role of roleNames)
      process.stdout.write(`${role.padEnd(22)} ${rolePermissions[role].join(' ')}\n`);
  });

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new Error('pipe the secret on standard input (it is never an argument)');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

program
  .command('config')
  .description('print the effective configuration (secrets show only whether they are set)')
  .action(() => {
    process.stdout.write(JSON.stringify(describeConfig(configOrExit()), null, 2) + '\n');
  });

registerDiscoverCommand(program);
registerScanCommand(program);

program.parseAsync().catch((error: unknown) => {
  const message =
    error instanceof ConfigError ? `configuration error: ${error.message}` : (error as Error).message;
  process.stderr.write(`cardhold: ${message}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
