import { type KeyObject, verify as verifySignature } from 'node:crypto';
import type { Sql } from 'postgres';
import { loadPublicSigningKeys } from './audit-keys.ts';
import { type CheckpointStatement, checkpointLink, laneHeads } from './checkpoints.ts';
import type { AuditRecord, DetailValue } from './events.ts';
import { GENESIS_HASH, recordHash } from './record-hash.ts';

export type ProblemKind =
  | 'hash_mismatch'
  | 'broken_link'
  | 'missing_record'
  | 'truncated'
  | 'checkpoint_mismatch'
  | 'checkpoint_signature_invalid'
  | 'checkpoint_chain_broken'
  | 'checkpoint_unknown'
  | 'signing_key_untrusted';

export interface Problem {
  kind: ProblemKind;
  detail: string;
  seq?: string;
  lane?: number;
  lane_seq?: string;
  checkpoint?: string;
}

export interface VerifyReport {
  ok: boolean;
  records_checked: number;
  lanes_checked: number;
  checkpoints_checked: number;
  /**
   * Whether checkpoint signatures were checked against public keys kept outside the database. Without
   * them, the keys come from the database itself, and a rewrite that also replaced them would verify:
   * the report then proves consistency, not authenticity.
   */
  keys_pinned: boolean;
  from_checkpoint: string | null;
  /** The first bad record in trail order (lowest sequence), or the first checkpoint problem. */
  first_problem: Problem | null;
  problems: Problem[];
  problems_total: number;
}

interface RecordRow {
  seq: string;
  lane: number;
  lane_seq: string;
  occurred_at: Date;
  actor_type: AuditRecord['actorType'];
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  merchant_id: string | null;
  outcome: 'success' | 'failure';
  reason: string | null;
  origin: string;
  user_agent: string | null;
  request_id: string;
  service: string;
  details: Record<string, DetailValue>;
  prev_hash: Buffer;
  hash: Buffer;
}

export const recordColumns =
  'seq, lane, lane_seq, occurred_at, actor_type, actor_id, action, resource_type, resource_id, merchant_id, outcome, reason, origin, user_agent, request_id, service, details, prev_hash, hash';

export function rowToRecord(row: RecordRow): AuditRecord {
  return {
    seq: row.seq,
    lane: row.lane,
    laneSeq: BigInt(row.lane_seq),
    occurredAt: row.occurred_at,
    actorType: row.actor_type,
    actorId: row.actor_id,
    action: row.action,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    merchantId: row.merchant_id,
    outcome: row.outcome,
    reason: row.reason,
    origin: row.origin,
    userAgent: row.user_agent,
    requestId: row.request_id,
    service: row.service,
    details: row.details,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

const MAX_LISTED = 100;

/**
 * Checks the whole trail, or the part from a checkpoint on: every checkpoint's signature and its link to
 * the one before, every record's hash and its link to the previous record of its lane, no gap in any
 * lane, and every lane reaching at least as far as each checkpoint says it did (a cut tail). Editing,
 * deleting, inserting or reordering records changes a hash or a link; rewriting a whole chain changes a
 * head that a checkpoint signed.
 */
export async function verifyTrail(
  sql: Sql,
  options: { fromCheckpoint?: string; trustedKeys?: readonly KeyObject[] } = {},
): Promise<VerifyReport> {
  const problems: Problem[] = [];
  let problemsTotal = 0;
  let recordsChecked = 0;
  let checkpointsChecked = 0;
  let lanesChecked = 0;
  const report = (problem: Problem) => {
    problemsTotal++;
    if (problems.length < MAX_LISTED) problems.push(problem);
  };

  const stored = await loadPublicSigningKeys(sql);
  const pinned = options.trustedKeys?.map(spkiOf);
  // With pinned keys, only a stored key that is one of them verifies anything; any other is reported.
  const keys = new Map(
    stored
      .filter((k) => {
        if (!pinned || pinned.some((p) => p.equals(spkiOf(k.publicKey)))) return true;
        report({
          kind: 'signing_key_untrusted',
          detail: `Signing key version ${k.version} in the database is not one of the pinned public keys`,
        });
        return false;
      })
      .map((k) => [k.version, k.publicKey]),
  );
  const checkpoints = await sql<{ id: string; statement: Buffer; key_version: number; signature: Buffer }[]>`
    select id, statement, key_version, signature from audit.checkpoints order by id`;

  // Checkpoints: signatures and the chain between them.
  let startIndex = 0;
  if (options.fromCheckpoint !== undefined) {
    startIndex = checkpoints.findIndex((c) => String(c.id) === options.fromCheckpoint);
    if (startIndex < 0) {
      report({
        kind: 'checkpoint_unknown',
        detail: 'No checkpoint with this id',
        checkpoint: options.fromCheckpoint,
      });
      return finish();
    }
  }
  const expectations = new Map<string, Array<{ checkpoint: string; hash: string }>>();
  const startAt = new Map<number, { laneSeq: bigint; hash: string }>();
  for (let i = startIndex; i < checkpoints.length; i++) {
    const c = checkpoints[i] as (typeof checkpoints)[number];
    const id = String(c.id);
    checkpointsChecked++;
    const key = keys.get(c.key_version);
    if (!key || !verifySignature(null, c.statement, key, c.signature)) {
      report({
        kind: 'checkpoint_signature_invalid',
        detail: 'The signature does not verify',
        checkpoint: id,
      });
      continue;
    }
    const statement = JSON.parse(c.statement.toString('utf8')) as CheckpointStatement;
    const before = checkpoints[i - 1];
    const expectedPrev = before ? checkpointLink(before.statement, before.signature) : null;
    if (i > startIndex || options.fromCheckpoint === undefined) {
      if (statement.prev !== expectedPrev) {
        report({
          kind: 'checkpoint_chain_broken',
          detail: 'The previous checkpoint is missing or was changed',
          checkpoint: id,
        });
      }
    }
    for (const [lane, laneSeq, hash] of statement.lanes) {
      const at = `${lane}:${laneSeq}`;
      expectations.set(at, [...(expectations.get(at) ?? []), { checkpoint: id, hash }]);
      if (i === startIndex && options.fromCheckpoint !== undefined) {
        startAt.set(lane, { laneSeq: BigInt(laneSeq), hash });
      }
    }
  }

  // Records, lane by lane.
  const lanes = new Set<number>([...(await laneHeads(sql)).map(([lane]) => lane), ...startAt.keys()]);
  for (const [at] of expectations) lanes.add(Number(at.split(':')[0]));
  lanesChecked = lanes.size;
  for (const lane of [...lanes].sort((a, b) => a - b)) {
    const from = startAt.get(lane);
    let expectedSeq = from ? from.laneSeq : 1n;
    let previousHash: Buffer | undefined = from ? undefined : GENESIS_HASH;
    let lastSeen = 0n;
    await sql<RecordRow[]>`
      select ${sql.unsafe(recordColumns)} from audit.records
      where lane = ${lane} and lane_seq >= ${expectedSeq.toString()} order by lane_seq`.cursor(
      5000,
      (rows) => {
        for (const row of rows) {
          recordsChecked++;
          const record = rowToRecord(row);
          const place = { seq: String(row.seq), lane, lane_seq: String(row.lane_seq) };
          if (record.laneSeq !== expectedSeq) {
            report({
              kind: 'missing_record',
              detail: `Lane ${lane} jumps from ${expectedSeq - 1n} to ${record.laneSeq}: records were deleted`,
              ...place,
            });
          } else if (previousHash && !record.prevHash.equals(previousHash)) {
            report({
              kind: 'broken_link',
              detail:
                'The record does not link to the one before it: records were inserted, deleted or reordered',
              ...place,
            });
          }
          const computed = recordHash(record);
          if (!computed.equals(record.hash)) {
            report({
              kind: 'hash_mismatch',
              detail: 'The record was changed after it was written',
              ...place,
            });
          }
          for (const expected of expectations.get(`${lane}:${record.laneSeq}`) ?? []) {
            if (expected.hash !== record.hash.toString('hex')) {
              report({
                kind: 'checkpoint_mismatch',
                detail: `The record differs from the one checkpoint ${expected.checkpoint} signed: the chain was rewritten`,
                checkpoint: expected.checkpoint,
                ...place,
              });
            }
          }
          previousHash = record.hash;
          expectedSeq = record.laneSeq + 1n;
          lastSeen = record.laneSeq;
        }
      },
    );
    // A checkpoint that saw this lane further than it now reaches: the tail was cut.
    for (const [at, list] of expectations) {
      const [l, s] = at.split(':');
      if (Number(l) !== lane || BigInt(s as string) <= lastSeen) continue;
      for (const expected of list) {
        report({
          kind: 'truncated',
          detail: `Checkpoint ${expected.checkpoint} signed lane ${lane} up to ${s}, but it now ends at ${lastSeen}`,
          checkpoint: expected.checkpoint,
          lane,
          lane_seq: String(s),
        });
      }
    }
  }
  return finish();

  function finish(): VerifyReport {
    const bySeq = problems
      .filter((p) => p.seq !== undefined)
      .sort((a, b) => Number(BigInt(a.seq as string) - BigInt(b.seq as string)));
    return {
      ok: problemsTotal === 0,
      records_checked: recordsChecked,
      lanes_checked: lanesChecked,
      checkpoints_checked: checkpointsChecked,
      keys_pinned: pinned !== undefined,
      from_checkpoint: options.fromCheckpoint ?? null,
      first_problem: bySeq[0] ?? problems[0] ?? null,
      problems,
      problems_total: problemsTotal,
    };
  }
}

function spkiOf(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' });
}
