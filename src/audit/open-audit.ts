import type { Sql } from 'postgres';
import type { Config } from '../config/config.ts';
import type { RoleMetrics } from '../http/metrics.ts';
import type { KeyCreatedHook } from '../keys/key-hierarchy.ts';
import { isSealable, type KeyProvider } from '../keys/key-provider.ts';
import type { Logger } from '../shared/logger.ts';
import { withTimeout } from '../shared/with-timeout.ts';
import { openCheckpointSigner, openHashKey } from './audit-keys.ts';
import { AuditTrail } from './audit-trail.ts';
import { Checkpointer } from './checkpoints.ts';
import type { AuditEvent } from './events.ts';
import { openAuditSink } from './sink.ts';

export interface OpenAudit {
  trail: AuditTrail;
  checkpointer: Checkpointer | undefined;
  /** Records the stop (PCI 10.2.1.6), signs a last checkpoint and closes the stream. */
  close(): Promise<void>;
}

/**
 * Opens a service's audit trail: its keyed-hash key, its lanes, the stream, and (for the vault, which
 * holds the key provider) the checkpoint signer. Records the trail's initialization on a fresh
 * database and its start every time. Failures of the trail and of signing reach the metrics and the
 * error log (PCI DSS 10.7.2).
 */
export async function openAudit(options: {
  sql: Sql;
  provider: KeyProvider;
  service: 'vault' | 'api' | 'cli';
  config: Config;
  logger: Logger;
  metrics?: RoleMetrics | undefined;
  signCheckpoints: boolean;
  /** Record the trail's start and stop; off for one-shot CLI commands, which record only what they do. */
  announce?: boolean;
}): Promise<OpenAudit> {
  const announce = options.announce ?? true;
  const { sql, provider, service, config, logger, metrics } = options;
  const trail = new AuditTrail({
    sql,
    service,
    hashKey: undefined,
    lanes: config.auditLanes,
    logger,
    sink: openAuditSink(config.auditStream, config.auditStreamFile),
    observer: {
      recorded: (record) => metrics?.auditRecorded(record.outcome),
      writeFailed: (error) =>
        metrics
          ? metrics.auditWriteFailure(logger, error)
          : logger.error({ control: 'audit_write' }, 'audit write failed'),
    },
  });
  const self = (action: AuditEvent['action'], details?: AuditEvent['details']): AuditEvent => ({
    action,
    actor: { type: 'service', id: `cardhold-${service}` },
    resource: { type: 'audit_trail', id: service },
    merchantId: null,
    outcome: 'success',
    origin: trail.selfOrigin,
    ...(details ? { details } : {}),
  });

  let checkpointer: Checkpointer | undefined;
  const openKeys = async () => {
    const hashKey = await openHashKey(sql, provider);
    trail.useHashKey(hashKey);
    if (hashKey.created) await trail.record(self('audit.initialize', { hash_key_version: hashKey.version }));
    if (!options.signCheckpoints) return;
    const { signer, created } = await openCheckpointSigner(sql, provider);
    if (created) await trail.record(self('audit_key.create', { signing_key_version: signer.version }));
    checkpointer = new Checkpointer({
      sql,
      signer,
      everyRecords: config.auditCheckpointRecords,
      everySeconds: config.auditCheckpointSeconds,
      logger,
      onFailure: (error) =>
        metrics
          ? metrics.controlFailure('checkpoint_signing', logger, error)
          : logger.error({ control: 'checkpoint_signing' }, 'audit checkpoint signing failed'),
    });
    const counter = checkpointer;
    trail.observe({ recorded: () => counter.noteRecord(), writeFailed: () => undefined });
    checkpointer.start();
  };
  // A sealed key provider cannot open the hash and signing keys yet. The trail still records (records
  // of unseal submissions need no key: a refused credential's keyed hash is dropped, not stored plain);
  // the keys open on unseal, and the first checkpoint then signs what was recorded while sealed.
  if (provider.sealed && isSealable(provider)) {
    provider.whenUnsealed().then(openKeys, (error: unknown) => {
      logger.error({ err: { message: String(error) } }, 'audit keys did not open after unseal');
    });
    // A failure here after unseal is a control failure: checkpoints stop until a restart.
  } else {
    await openKeys();
  }
  if (announce) {
    await trail.record(self('audit.start', { lanes: config.auditLanes }));
    logger.info({ service }, 'audit trail started');
  }

  return {
    trail,
    get checkpointer() {
      return checkpointer;
    },
    close: async () => {
      // Bounded: with the database gone, shutdown must not wait for connection timeouts.
      if (announce) {
        await withTimeout(trail.record(self('audit.stop')), 3000).catch((error: unknown) =>
          logger.error({ err: { message: String(error) } }, 'audit stop not recorded'),
        );
      }
      await withTimeout(checkpointer?.stop() ?? Promise.resolve(), 3000).catch(() => undefined);
      await trail.close();
    },
  };
}

/** Records each new key-encrypting key in the transaction that stores it (PCI DSS 10.2.1.7). */
export function recordKeyCreation(trail: AuditTrail, sql: Sql): KeyCreatedHook {
  return (key, create) =>
    trail.withLane((audit) =>
      sql.begin(async (tx) => {
        const db = tx as unknown as Sql;
        if (!(await create(db))) return;
        await audit.insert(db, [
          {
            action: 'key.create',
            actor: { type: 'service', id: `cardhold-${trail.service}` },
            resource: { type: 'key_encryption_key', id: `${key.merchantId}/${key.purpose}/v${key.version}` },
            merchantId: key.merchantId,
            outcome: 'success',
            origin: trail.selfOrigin,
            details: { purpose: key.purpose, version: key.version },
          },
        ]);
      }),
    );
}
