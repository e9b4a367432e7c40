import { type Static, Type } from 'typebox';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { type AccessContext, accessEvent } from '../audit/events.ts';
import { accessOf } from '../auth/authenticate.ts';
import { isPerson } from '../auth/principal.ts';
import type { AppInstance } from '../http/create-server.ts';
import type { RoleMetrics } from '../http/metrics.ts';
import { CardholdError, isCardholdError } from '../shared/errors.ts';
import { Secret } from '../shared/secret.ts';
import type { CvvSlots, CvvSlotView } from './cvv-slots.ts';
import {
  BatchBody,
  BatchResponse,
  CvvSlotBody,
  CvvSlotParams,
  CvvSlotView as CvvSlotSchema,
  ListQuery,
  TokenIdParams,
  TokenizeBody,
  TokenizeResponse,
  TokenList,
  TokenParams,
  TokenView as TokenSchema,
} from './schemas.ts';
import type { TokenizeRequest, TokenizeResult, TokenService, TokenView } from './token-service.ts';

type TokenizeInput = Static<typeof TokenizeBody>;

/** Wraps card fields in Secrets at the edge, so nothing downstream holds them as plain strings in objects. */
function toRequest(body: TokenizeInput): TokenizeRequest {
  return {
    pan: new Secret(body.pan),
    expMonth: body.exp_month,
    expYear: body.exp_year,
    holderName: body.holder_name,
    cvv: body.cvv === undefined ? undefined : new Secret(body.cvv),
    cvvOptions: body.cvv_options
      ? { ttlSeconds: body.cvv_options.ttl_seconds, maxUses: body.cvv_options.max_uses }
      : undefined,
    dedup: body.dedup,
    expiresAt: body.expires_at,
    formatPreservingAlias: body.format_preserving_alias,
  };
}

const token = (view: TokenView) => ({ ...view, object: 'token' as const });
const slot = (view: CvvSlotView) => ({ ...view, object: 'cvv_slot' as const });
const result = (r: TokenizeResult) => ({
  token: token(r.token),
  deduplicated: r.deduplicated,
  cvv_slot: r.cvv_slot ? slot(r.cvv_slot) : null,
});

const security = [{ apiKey: [] }];

/** PCI DSS 8.4: a reveal needs a recent second factor, not just one at sign-in. */
const REVEAL_MFA_MAX_AGE_MS = 15 * 60 * 1000;

export function registerVaultRoutes(
  app: AppInstance,
  deps: {
    tokens: TokenService;
    cvvSlots: CvvSlots;
    trail: AuditTrail;
    tokenizePerMinute: number;
    metrics?: RoleMetrics;
  },
): void {
  const { tokens, cvvSlots, trail, metrics } = deps;
  // Tokenization is limited per credential (PCI DSS 6.4 and the abuse controls); 0 turns it off.
  const tokenizeLimit =
    deps.tokenizePerMinute > 0 ? { limit: { group: 'tokenize', perMinute: deps.tokenizePerMinute } } : {};
  /** CVV slot reads and destroys live in the volatile store, so they are recorded here, found or not. */
  const slotAccess = async <T>(
    ctx: AccessContext,
    action: 'cvv.read' | 'cvv.destroy',
    slotId: string,
    work: () => Promise<T>,
  ): Promise<T> => {
    const resource = { type: 'cvv_slot', id: slotId };
    let result: T;
    try {
      result = await work();
    } catch (error) {
      if (isCardholdError(error) && error.code === 'cvv_slot_not_found') {
        await trail.record(accessEvent(ctx, action, resource, ctx.merchantId, { failure: error.code }));
      }
      throw error;
    }
    await trail.record(accessEvent(ctx, action, resource, ctx.merchantId));
    return result;
  };

  app.post(
    '/v1/tokens',
    {
      config: { access: 'tokens:create', ...tokenizeLimit },
      schema: {
        summary: 'Tokenize a card',
        description:
          'Validates and encrypts the card; an optional CVV goes only into a volatile CVV slot. 201 for a new token, 200 when dedup returned an existing one.',
        tags: ['tokens'],
        security,
        body: TokenizeBody,
        response: { 200: TokenizeResponse, 201: TokenizeResponse },
      },
    },
    async (request, reply) => {
      const created = await tokens.tokenize(accessOf(request), toRequest(request.body));
      if (!created.deduplicated) metrics?.tokenCreated();
      return reply.code(created.deduplicated ? 200 : 201).send(result(created));
    },
  );

  app.post(
    '/v1/tokens/batch',
    {
      config: { access: 'tokens:create', ...tokenizeLimit },
      schema: {
        summary: 'Tokenize up to 100 cards',
        description: 'Each card succeeds or fails on its own, with a per-item result.',
        tags: ['tokens'],
        security,
        body: BatchBody,
        response: { 200: BatchResponse },
      },
    },
    async (request) => {
      const items = await tokens.tokenizeBatch(accessOf(request), request.body.cards.map(toRequest));
      metrics?.tokenCreated(items.filter((i) => i.status === 'created' && !i.result.deduplicated).length);
      return {
        results: items.map((item) =>
          item.status === 'created'
            ? { index: item.index, status: item.status, result: result(item.result) }
            : { index: item.index, status: item.status, error: item.error },
        ),
      };
    },
  );

  app.get(
    '/v1/tokens',
    {
      config: { access: 'tokens:read' },
      schema: {
        summary: 'List or search tokens',
        description: 'Newest first; filter by fingerprint or last four; page with starting_after.',
        tags: ['tokens'],
        security,
        querystring: ListQuery,
        response: { 200: TokenList },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await tokens.list(accessOf(request), {
        fingerprint: q.fingerprint,
        last4: q.last4,
        limit: q.limit,
        startingAfter: q.starting_after,
      });
      return { object: 'list' as const, data: page.data.map(token), has_more: page.has_more };
    },
  );

  app.get(
    '/v1/tokens/:id',
    {
      config: { access: 'tokens:read' },
      schema: {
        summary: 'Read a token (masked)',
        description: 'Returns brand, BIN, last four, expiry and fingerprint; never the card number.',
        tags: ['tokens'],
        security,
        params: TokenParams,
        response: { 200: TokenSchema },
      },
    },
    async (request) => token(await tokens.get(accessOf(request), request.params.id)),
  );

  app.delete(
    '/v1/tokens/:id',
    {
      config: { access: 'tokens:delete' },
      schema: {
        summary: 'Delete a token (crypto-shred)',
        tags: ['tokens'],
        security,
        params: TokenIdParams,
      },
    },
    async (request, reply) => {
      await tokens.delete(accessOf(request), request.params.id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/v1/tokens/:id/reveal',
    {
      config: { access: 'tokens:reveal' },
      schema: {
        summary: 'Reveal the full card number (people only, MFA in the last 15 minutes, a stated reason)',
        description:
          'For a person holding tokens:reveal whose multi-factor authentication is at most 15 minutes old (operators: POST /v1/auth/step-up). The reason is recorded in the audit trail with the reveal.',
        tags: ['tokens'],
        security,
        params: TokenIdParams,
        body: Type.Object(
          { reason: Type.String({ minLength: 10, maxLength: 500 }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            id: Type.String(),
            object: Type.Literal('revealed_card'),
            pan: Type.String(),
            brand: Type.String(),
            exp_month: Type.Integer(),
            exp_year: Type.Integer(),
            holder_name: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (request, reply) => {
      const principal = request.principal;
      if (!principal || !isPerson(principal)) {
        throw new CardholdError('forbidden', { detail: 'Only a person can reveal a card number' });
      }
      const mfaAge = principal.mfaAt ? Date.now() - principal.mfaAt.getTime() : Number.POSITIVE_INFINITY;
      if (mfaAge > REVEAL_MFA_MAX_AGE_MS) {
        throw new CardholdError('mfa_required', {
          detail: 'Revealing a card number needs multi-factor authentication within the last 15 minutes',
        });
      }
      const card = await tokens.reveal(accessOf(request), request.params.id, request.body.reason);
      // Never cached, never logged: the body is the only place the number goes.
      return reply.header('cache-control', 'no-store').send({
        id: request.params.id,
        object: 'revealed_card' as const,
        pan: card.pan.expose(),
        brand: card.brand,
        exp_month: card.expMonth,
        exp_year: card.expYear,
        holder_name: card.holderName ?? null,
      });
    },
  );

  app.post(
    '/v1/tokens/:id/cvv-slots',
    {
      config: { access: 'tokens:create', ...tokenizeLimit },
      schema: {
        summary: 'Attach a fresh CVV to an existing token',
        tags: ['cvv'],
        security,
        params: TokenIdParams,
        body: CvvSlotBody,
        response: { 201: CvvSlotSchema },
      },
    },
    async (request, reply) => {
      const view = await tokens.addCvv(accessOf(request), request.params.id, new Secret(request.body.cvv), {
        ttlSeconds: request.body.ttl_seconds,
        maxUses: request.body.max_uses,
      });
      return reply.code(201).send(slot(view));
    },
  );

  app.get(
    '/v1/cvv-slots/:id',
    {
      config: { access: 'tokens:read' },
      schema: {
        summary: 'Inspect a CVV slot (never the CVV)',
        tags: ['cvv'],
        security,
        params: CvvSlotParams,
        response: { 200: CvvSlotSchema },
      },
    },
    async (request) => {
      const ctx = accessOf(request);
      const id = request.params.id;
      return slot(await slotAccess(ctx, 'cvv.read', id, () => cvvSlots.describe(ctx.merchantId, id)));
    },
  );

  app.delete(
    '/v1/cvv-slots/:id',
    {
      config: { access: 'tokens:delete' },
      schema: { summary: 'Destroy a CVV slot', tags: ['cvv'], security, params: CvvSlotParams },
    },
    async (request, reply) => {
      const ctx = accessOf(request);
      const id = request.params.id;
      await slotAccess(ctx, 'cvv.destroy', id, () => cvvSlots.destroy(ctx.merchantId, id));
      return reply.code(204).send();
    },
  );
}
