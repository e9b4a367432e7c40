import { Type } from 'typebox';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { accessEvent } from '../audit/events.ts';
import { accessOf } from '../auth/authenticate.ts';
import type { AppInstance } from '../http/create-server.ts';
import { isCardholdError } from '../shared/errors.ts';
import type { CvvSlots } from './cvv-slots.ts';
import type { ForwardProxy } from './forward-proxy.ts';
import { placeholders } from './forward-template.ts';
import { cvvSlotIdPattern, tokenIdPattern } from './identifiers.ts';
import { CvvSlotParams } from './schemas.ts';

const ForwardBody = Type.Object(
  {
    token: Type.Optional(
      Type.String({
        pattern: tokenIdPattern,
        description: 'The card to fill the placeholders from; a request without placeholders needs none',
      }),
    ),
    cvv_slot: Type.Optional(Type.String({ pattern: cvvSlotIdPattern })),
    request: Type.Object(
      {
        method: Type.Enum(['POST', 'PUT', 'PATCH', 'GET', 'DELETE']),
        url: Type.String({ minLength: 9, maxLength: 2048, description: 'An allow-listed https URL' }),
        headers: Type.Optional(
          Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$' }), Type.String({ maxLength: 4096 })),
        ),
        body: Type.Optional(
          Type.String({
            maxLength: 65536,
            description: `A template; placeholders: ${placeholders.map((p) => `{{${p}}}`).join(', ')}`,
          }),
        ),
      },
      { additionalProperties: false },
    ),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 100, maximum: 60000 })),
  },
  { additionalProperties: false },
);

const ForwardResponse = Type.Object({
  object: Type.Literal('forward_result'),
  outcome: Type.Enum(['answered', 'timeout', 'connection_failed', 'connection_lost']),
  sent: Type.Boolean({ description: 'Whether the request may have reached the processor' }),
  response: Type.Union([
    Type.Object({
      status: Type.Integer(),
      headers: Type.Record(Type.String(), Type.String()),
      body: Type.String({ description: 'Scrubbed of card numbers and CVVs' }),
    }),
    Type.Null(),
  ]),
  cvv_slot: Type.Union([Type.Object({ id: Type.String(), destroyed: Type.Boolean() }), Type.Null()]),
});

const security = [{ apiKey: [] }];

/** The forward proxy and CVV settlement: for the api's service identity (mTLS) only. */
export function registerForwardRoutes(
  app: AppInstance,
  deps: { proxy: ForwardProxy; cvvSlots: CvvSlots; trail: AuditTrail },
): void {
  app.post(
    '/v1/forward',
    {
      config: { access: 'forward:use' },
      schema: {
        summary: 'Send a request with card data to an allow-listed processor',
        description:
          'Fills the template’s placeholders from the token (and the CVV slot), sends it over verified TLS, and returns the answer scrubbed of card data. Every forward, with card data or without, is recorded in the audit trail before anything is sent (503 audit_unavailable otherwise). A CVV slot is destroyed by an authorization answer (HTTP 2xx, or 402 for a decline) and kept, within its uses and lifetime, after a timeout, a lost connection, a 5xx or any other status (400, 401, 403, 404, 408, 409, 429 …). If the slot cannot be destroyed after an answer, the answer is still returned, with cvv_slot.destroyed false; the vault then refuses the slot and deletes it again later, and its TTL is the backstop.',
        tags: ['forward'],
        security,
        body: ForwardBody,
        response: { 200: ForwardResponse },
      },
    },
    async (request) => {
      const body = request.body;
      const result = await deps.proxy.forward(accessOf(request), {
        token: body.token,
        cvvSlot: body.cvv_slot,
        method: body.request.method,
        url: body.request.url,
        headers: body.request.headers ?? {},
        body: body.request.body,
        timeoutMs: body.timeout_ms,
      });
      return {
        object: 'forward_result' as const,
        outcome: result.outcome,
        sent: result.sent,
        response: result.response,
        cvv_slot: result.cvvSlot,
      };
    },
  );

  app.post(
    '/v1/cvv-slots/:id/settle',
    {
      config: { access: 'cvv:use' },
      schema: {
        summary: 'Destroy a CVV slot because its authorization outcome is now known',
        description:
          'For outcomes learned later (a status query after a timeout): the authorization completed, so the CVV goes (PCI DSS 3.3.1.2). Answers 204 whether or not the slot still existed.',
        tags: ['cvv'],
        security,
        params: CvvSlotParams,
        body: Type.Object(
          { outcome: Type.Union([Type.Literal('approved'), Type.Literal('declined')]) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const ctx = accessOf(request);
      const id = request.params.id;
      const existed = await deps.cvvSlots.destroy(ctx.merchantId, id).then(
        () => true,
        (error: unknown) => {
          if (isCardholdError(error) && error.code === 'cvv_slot_not_found') return false;
          throw error;
        },
      );
      await deps.trail.record(
        accessEvent(ctx, 'cvv.destroy', { type: 'cvv_slot', id }, ctx.merchantId, {
          details: { outcome: request.body.outcome, existed },
        }),
      );
      return reply.code(204).send();
    },
  );
}
