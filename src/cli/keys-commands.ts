import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { Sql } from 'postgres';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { accessEvent } from '../audit/events.ts';
import { recordKeyCreation } from '../audit/open-audit.ts';
import { KeyHierarchy } from '../keys/key-hierarchy.ts';
import { keyInventory } from '../keys/key-inventory.ts';
import { type KeyJobKind, runKeyJob } from '../keys/key-jobs.ts';
import {
  type KeyActor,
  KeyLifecycle,
  type RotatablePurpose,
  rotatablePurposes,
} from '../keys/key-lifecycle.ts';
import { isSealable, type KeyProvider, type KeyPurpose, keyPurposes } from '../keys/key-provider.ts';
import { cryptoperiodsOf, keyStatus } from '../keys/key-status.ts';
import { retireOldMasterVersions, rotateMasterKey, runMasterRewrap } from '../keys/master-rotation.ts';
import { setMerchantFrozen } from '../vault/merchant-freezes.ts';
import { configOrExit } from './run-roles.ts';

/** What main.ts's `withCliServices` hands a command: admin connection, key provider, trail, actor. */
export type WithCliServices = (
  command: string,
  run: (services: { sql: Sql; provider: KeyProvider; trail: AuditTrail; who: KeyActor }) => Promise<void>,
) => Promise<void>;

interface Lifecycle {
  sql: Sql;
  provider: KeyProvider;
  trail: AuditTrail;
  who: KeyActor;
  keys: KeyHierarchy;
  lifecycle: KeyLifecycle;
  /** CARDHOLD_KEY_RETIRE_GRACE_SECONDS: how long after a rotation an old version may be retired. */
  graceSeconds: number;
}

/**
 * Runs a lifecycle command; a sealed provider (local-sealed) is first unsealed in this process by the
 * custodians' shares, read one per line from standard input (never from arguments).
 */
function withLifecycle(withServices: WithCliServices, command: string, run: (l: Lifecycle) => Promise<void>) {
  return withServices(command, async ({ sql, provider, trail, who }) => {
    await unsealFromStdin(provider);
    const graceSeconds = configOrExit().keyRetireGraceSeconds;
    const keys = new KeyHierarchy(sql, provider, { onKeyCreated: recordKeyCreation(trail, sql) });
    try {
      const lifecycle = new KeyLifecycle({ sql, provider, trail, keys, retireGraceSeconds: graceSeconds });
      await run({ sql, provider, trail, who, keys, lifecycle, graceSeconds });
    } finally {
      keys.forget();
    }
  });
}

async function unsealFromStdin(provider: KeyProvider): Promise<void> {
  if (!isSealable(provider) || !provider.sealed) return;
  process.stderr.write(
    `cardhold: the master key is sealed; ${provider.sealStatus().threshold} custodians, enter your shares (one per line)\n`,
  );
  const lines = createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    const share = line.trim();
    if (!share) continue;
    const status = await provider.submitShare(share);
    if (!status.sealed) break;
  }
  lines.close();
  if (provider.sealed) throw new Error('standard input ended before enough shares unsealed the master key');
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function parsePurpose<T extends string>(value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new Error(`--purpose must be one of ${allowed.join(', ')}`);
  return value as T;
}

function parseVersion(value: string): number {
  const version = Number(value);
  if (!Number.isInteger(version) || version < 1) throw new Error('--version must be a positive whole number');
  return version;
}

/**
 * `cardhold keys rotate --purpose …`: a new version of a merchant key (or of the audit keys); main.ts's
 * `keys rotate` calls this when --purpose is given (without it, the command rotates an API key).
 */
export async function rotateKeyVersion(
  withServices: WithCliServices,
  options: { purpose: string; merchant?: string },
): Promise<void> {
  if (options.purpose === 'master') {
    await withLifecycle(withServices, 'keys rotate', async (l) => {
      const rotated = await rotateMasterKey(l);
      print(rotated);
      process.stderr.write(
        `cardhold: master key version ${rotated.version} wraps from now on; run \`cardhold keys rewrap\` to move every wrapped key to it\n`,
      );
    });
    return;
  }
  const purpose = parsePurpose<RotatablePurpose>(options.purpose, rotatablePurposes);
  if (purpose !== 'audit' && !options.merchant) throw new Error('--merchant is required for merchant keys');
  await withLifecycle(withServices, 'keys rotate', async ({ lifecycle, who }) => {
    print(await lifecycle.rotate(who, purpose, options.merchant));
  });
}

/**
 * Moves everything off old versions and retires what nothing references any more: the rewrap job for
 * PAN keys, the re-fingerprint job for fingerprint keys; CVV versions retire once their slots expired.
 */
async function catchUp(l: Lifecycle, merchant: string | undefined, batchSize: number) {
  const results = [];
  const jobs: Array<[KeyPurpose, KeyJobKind | undefined]> = [
    ['pan', 'rewrap'],
    ['fingerprint', 'refingerprint'],
    ['cvv', undefined],
  ];
  for (const [purpose, kind] of jobs) {
    for (const merchantId of await l.lifecycle.merchantsWithOldVersions(purpose, merchant)) {
      const job = kind
        ? await runKeyJob(l, kind, merchantId, {
            batchSize,
            onProgress: (p) =>
              process.stderr.write(
                `cardhold: ${p.kind} ${p.merchant_id} → v${p.target_version}: ${p.done}/${p.total} (pass ${p.pass})\n`,
              ),
          })
        : undefined;
      const retired = await l.lifecycle.retireUnreferenced(l.who, merchantId, purpose);
      results.push({ merchant_id: merchantId, purpose, job: job ?? null, retired });
    }
  }
  return results;
}

/** The master rewrap job, then the retirement of old master versions that nothing references. */
async function catchUpMaster(l: Lifecycle, batchSize: number) {
  const job = await runMasterRewrap(l, {
    batchSize,
    onProgress: (p) =>
      process.stderr.write(
        `cardhold: master rewrap ${p.table} → ${l.provider.name}/${l.provider.masterVersion}: ${p.done}/${p.total}\n`,
      ),
  });
  const retirement = await retireOldMasterVersions(l, l.graceSeconds);
  return { ...job, ...retirement };
}

export function registerKeyLifecycleCommands(keysCommand: Command, withServices: WithCliServices): void {
  keysCommand
    .command('rewrap')
    .description(
      'move data keys (and fingerprints) to the newest key versions, resumably, then retire versions nothing references',
    )
    .option('--merchant <id>', 'only this merchant')
    .option('--batch-size <n>', 'records per transaction', '200')
    .action(async (options: { merchant?: string; batchSize: string }) => {
      const batchSize = Number(options.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
        throw new Error('--batch-size must be a whole number from 1 to 10000');
      }
      await withLifecycle(withServices, 'keys rewrap', async (l) => {
        // Master rewrap: deployment-wide, so not with --merchant.
        const master = options.merchant ? null : await catchUpMaster(l, batchSize);
        print({ master, merchants: await catchUp(l, options.merchant, batchSize) });
      });
    });

  keysCommand
    .command('retire')
    .description('retire a decrypt-only key version that nothing references (its material is destroyed)')
    .requiredOption('--purpose <purpose>', keyPurposes.join('|'))
    .requiredOption('--merchant <id>', 'the merchant')
    .requiredOption('--version <n>', 'the version')
    .action(async (options: { purpose: string; merchant: string; version: string }) => {
      const purpose = parsePurpose(options.purpose, keyPurposes);
      await withLifecycle(withServices, 'keys retire', async ({ lifecycle, who }) => {
        await lifecycle.retire(who, options.merchant, purpose, parseVersion(options.version));
        print({ merchant_id: options.merchant, purpose, version: Number(options.version), state: 'retired' });
      });
    });

  keysCommand
    .command('compromise')
    .description(
      'declare a key version compromised: a new version replaces it, everything under it moves, then it is destroyed',
    )
    .requiredOption('--purpose <purpose>', keyPurposes.join('|'))
    .requiredOption('--merchant <id>', 'the merchant')
    .requiredOption('--version <n>', 'the compromised version')
    .action(async (options: { purpose: string; merchant: string; version: string }) => {
      const purpose = parsePurpose(options.purpose, keyPurposes);
      const version = parseVersion(options.version);
      await withLifecycle(withServices, 'keys compromise', async (l) => {
        const declared = await l.lifecycle.compromise(l.who, options.merchant, purpose, version);
        if (declared.rotated) {
          // It was the active version: processes may still write under it until they see the rotation.
          process.stderr.write(
            `cardhold: waiting ${l.graceSeconds} s until every process has stopped using version ${version}\n`,
          );
          await sleep(l.graceSeconds * 1000);
        }
        const moved = await catchUp(l, options.merchant, 200);
        const destroyed = moved.some((m) => m.purpose === purpose && m.retired.includes(version));
        print({ ...declared, destroyed, results: moved });
        if (!destroyed) {
          process.stderr.write(
            `cardhold: version ${version} is not destroyed yet (records remain or CVV slots may live); run \`cardhold keys rewrap\` again\n`,
          );
          process.exitCode = 1;
        }
      });
    });

  keysCommand
    .command('status')
    .description(
      'each active key with its age against its cryptoperiod; warns before and fails (exit 4) after',
    )
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withServices('keys status', async ({ sql, trail, who }) => {
        const rows = await keyStatus(sql, cryptoperiodsOf(configOrExit()));
        await trail.record(accessEvent(who, 'key.inventory', { type: 'key_status', id: '*' }, null));
        if (options.json) print(rows);
        else {
          for (const r of rows) {
            const label = r.status === 'ok' ? 'OK  ' : r.status === 'warn' ? 'WARN' : 'EXPIRED';
            process.stdout.write(
              `${label} ${r.merchant_id ?? '(deployment)'} ${r.key}/${r.purpose} v${r.version}: ${r.age_days} of ${r.cryptoperiod_days} days, period ends ${r.period_ends_at}\n`,
            );
          }
        }
        if (rows.some((r) => r.status === 'expired')) process.exitCode = 4;
      });
    });

  keysCommand
    .command('inventory')
    .description('every key and certificate: purpose, version, algorithm, strength, provider, dates, state')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withServices('keys inventory', async ({ sql, provider, trail, who }) => {
        const config = configOrExit();
        const items = await keyInventory({
          sql,
          provider,
          periods: cryptoperiodsOf(config),
          certificateDir: config.tlsDir ?? path.join(config.dataDir, 'tls'),
        });
        await trail.record(accessEvent(who, 'key.inventory', { type: 'key_inventory', id: '*' }, null));
        if (options.json) print(items);
        else {
          const columns = [
            'id',
            'purpose',
            'algorithm',
            'strength_bits',
            'provider',
            'environment',
            'created_at',
            'expires_at',
            'state',
          ] as const;
          const widths = columns.map((c) =>
            Math.max(c.length, ...items.map((i) => String(i[c] ?? '-').length)),
          );
          const line = (cells: string[]) => `${cells.map((c, n) => c.padEnd(widths[n] ?? 0)).join('  ')}\n`;
          process.stdout.write(line([...columns]));
          for (const item of items) process.stdout.write(line(columns.map((c) => String(item[c] ?? '-'))));
        }
      });
    });
}

/** `cardhold merchants freeze|unfreeze <id>`: incident response, audited. */
export function registerMerchantFreezeCommands(
  merchantsCommand: Command,
  withServices: WithCliServices,
): void {
  for (const [name, frozen] of [
    ['freeze', true],
    ['unfreeze', false],
  ] as const) {
    merchantsCommand
      .command(`${name} <id>`)
      .description(frozen ? "serve none of the merchant's card data until unfrozen" : 'lift a freeze')
      .action(async (id: string) => {
        await withServices(`merchants ${name}`, async ({ sql, trail, who }) => {
          print(await setMerchantFrozen(sql, trail, who, id, frozen));
        });
      });
  }
}
