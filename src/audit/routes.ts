import type { Sql } from 'postgres';
import { Type } from 'typebox';
import { adminAccess } from '../auth/authenticate.ts';
import type { AppInstance } from '../http/create-server.ts';
import { requestDateTime } from '../shared/request-date-time.ts';
import { loadPublicSigningKeys } from './audit-keys.ts';
import type { AuditTrail } from './audit-trail.ts';
import { readRecords } from './export.ts';
import { recordToJson } from './sink.ts';
import { verifyTrail } from './verify.ts';

const Problem = Type.Object({
  kind: Type.String(),
  detail: Type.String(),
  seq: Type.Optional(Type.String()),
  lane: Type.Optional(Type.Integer()),
  lane_seq: Type.Optional(Type.String()),
  checkpoint: Type.Optional(Type.String()),
});

const VerifyReport = Type.Object({
  ok: Type.Boolean(),
  records_checked: Type.Integer(),
  lanes_checked: Type.Integer(),
  checkpoints_checked: Type.Integer(),
  from_checkpoint: Type.Union([Type.String(), Type.Null()]),
  first_problem: Type.Union([Problem, Type.Null()]),
  problems: Type.Array(Problem),
  problems_total: Type.Integer(),
});

/**
 * The trail for auditors on the api role: the checkpoint public keys (public), verification and reading
 * by time range (administrator; the `audit:read` permission once operator roles exist). Every read and
 * verification is itself recorded (PCI DSS 10.2.1.3).
 */
export function registerAuditRoutes(app: AppInstance, deps: { sql: Sql; trail: AuditTrail }): void {
  const { sql, trail } = deps;
  const security = [{ bearer: [] }];

  app.get(
    '/v1/audit/signing-keys',
    {
      config: { access: 'public' },
      schema: {
        summary: 'Public keys that verify audit checkpoints (Ed25519)',
        tags: ['audit'],
        response: {
          200: Type.Object({
            object: Type.Literal('list'),
            data: Type.Array(
              Type.Object({
                version: Type.Integer(),
                algorithm: Type.Literal('Ed25519'),
                public_key_pem: Type.String(),
                created_at: Type.String({ format: 'date-time' }),
              }),
            ),
          }),
        },
      },
    },
    async () => ({
      object: 'list' as const,
      data: (await loadPublicSigningKeys(sql)).map((k) => ({
        version: k.version,
        algorithm: 'Ed25519' as const,
        public_key_pem: k.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
        created_at: k.createdAt.toISOString(),
      })),
    }),
  );

  app.post(
    '/v1/admin/audit/verify',
    {
      config: { access: 'audit:read' },
      schema: {
        summary: 'Verify the audit trail: every hash, link and checkpoint signature',
        description:
          'From the start, or from a checkpoint. Names the first bad record; detects edited, deleted, inserted and reordered records and a cut tail.',
        tags: ['audit'],
        security,
        body: Type.Object(
          { from_checkpoint: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$' })) },
          { additionalProperties: false },
        ),
        response: { 200: VerifyReport },
      },
    },
    async (request) => {
      const access = adminAccess(request);
      await trail.record({
        action: 'audit.verify',
        ...access,
        resource: { type: 'audit_trail', id: request.body.from_checkpoint ?? 'all' },
        merchantId: null,
        outcome: 'success',
      });
      return verifyTrail(
        sql,
        request.body.from_checkpoint ? { fromCheckpoint: request.body.from_checkpoint } : {},
      );
    },
  );

  app.get(
    '/v1/admin/audit/records',
    {
      config: { access: 'audit:read' },
      schema: {
        summary: 'Read audit records by time range',
        description:
          'In sequence order; page with after_seq (the last seq of the page before). Use `cardhold audit-log export` for JSON lines.',
        tags: ['audit'],
        security,
        querystring: Type.Object(
          {
            from: Type.String({ format: 'date-time' }),
            to: Type.String({ format: 'date-time' }),
            // 18 digits: every such number fits PostgreSQL's bigint (19 may not).
            after_seq: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const q = request.query;
      const range = { from: requestDateTime(q.from, 'from'), to: requestDateTime(q.to, 'to') };
      await trail.record({
        action: 'audit.read',
        ...adminAccess(request),
        resource: { type: 'audit_trail', id: `${q.from}/${q.to}` },
        merchantId: null,
        outcome: 'success',
      });
      const records = await readRecords(sql, { ...range, afterSeq: q.after_seq, limit: q.limit + 1 });
      return {
        object: 'list' as const,
        data: records.slice(0, q.limit).map(recordToJson),
        has_more: records.length > q.limit,
      };
    },
  );
}
