import { setTimeout as sleep } from 'node:timers/promises';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AppInstance } from '../http/create-server.ts';
import { CardholdError } from '../shared/errors.ts';
import { luhnValid } from '../shared/pan-detect.ts';
import { Secret } from '../shared/secret.ts';
import { detectBrand } from '../vault/card-brands.ts';
import type { SeededLatency } from './latency.ts';
import type { AcquirerLedger } from './ledger.ts';
import {
  Authorization,
  AuthorizationParams,
  AuthorizeBody,
  type AuthorizeRequest,
  CaptureBody,
  RefundBody,
  SyncQuery,
  VoidBody,
} from './schemas.ts';
import { type DeclineCode, outcomeOf } from './test-cards.ts';

const tags = ['authorizations'];
const answers = { 200: Authorization };

/**
 * A card as the acquirer holds it while deciding: the number only inside a Secret. The CVC is
 * accepted and otherwise ignored (the incorrect-CVC outcome comes from the card table).
 */
interface Card {
  number: Secret<string>;
  expMonth: number;
  expYear: number;
}

const cardOf = (body: AuthorizeRequest): Card => ({
  number: new Secret(body.card.number),
  expMonth: body.card.exp_month,
  expYear: body.card.exp_year,
});

/** A card is valid to the end of its expiry month. */
function expired(card: Card, now: Date): boolean {
  const year = now.getUTCFullYear();
  return card.expYear < year || (card.expYear === year && card.expMonth < now.getUTCMonth() + 1);
}

/**
 * The acquirer's API: authorize, capture, void, refund and sync, for the vault's certificate only
 * (`acquirer:transact`). Outcomes follow the test card table (src/acquirers/test-cards.ts); the ledger
 * enforces amounts and states. Card numbers and CVCs never leave the request: answers carry the brand
 * and last four, and no log line or error is built from them.
 */
export function registerAcquirerRoutes(
  app: AppInstance,
  deps: { ledger: AcquirerLedger; latency: SeededLatency; hangMs: number },
): void {
  const { ledger, latency, hangMs } = deps;
  // Requests held by the timeout trigger are released when the server closes, so shutdown never waits.
  const closing = new AbortController();
  app.addHook('preClose', async () => closing.abort());

  app.register(async (plugin) => {
    const scope = plugin.withTypeProvider<TypeBoxTypeProvider>();
    scope.addHook('preHandler', async () => latency.wait());

    scope.post(
      '/v1/authorizations',
      {
        config: { access: 'acquirer:transact' },
        schema: {
          summary: 'Authorize (and optionally capture) a card payment',
          description:
            'The outcome follows the test card table (docs/test-acquirer.md). A reference seen before returns the recorded authorization without processing again.',
          tags,
          body: AuthorizeBody,
          response: answers,
        },
      },
      async (request, reply) => {
        const body = request.body;
        const replay = ledger.findByReference(body.reference);
        if (replay) return replay;
        const card = cardOf(body);
        if (!luhnValid(card.number.expose())) {
          throw new CardholdError('card_number_luhn_failed', { field: 'card.number' });
        }
        const outcome = outcomeOf(card.number.expose());
        if (outcome.kind === 'trigger' && outcome.trigger === 'server_error') {
          throw new CardholdError('acquirer_unavailable');
        }
        if (outcome.kind === 'trigger' && outcome.trigger === 'timeout') {
          // Longer than the server's idle-socket timeout: keep this socket open until the answer.
          request.raw.setTimeout(hangMs + 5000);
          await sleep(hangMs, undefined, { signal: closing.signal }).catch(() => undefined);
          throw new CardholdError('acquirer_timeout');
        }
        let decline: DeclineCode | null = null;
        if (expired(card, new Date())) decline = 'expired_card';
        else if (outcome.kind === 'decline') decline = outcome.code;
        const number = card.number.expose();
        const recorded = ledger.record({
          reference: body.reference,
          merchant: body.merchant,
          amount: body.amount,
          currency: body.currency,
          capture: body.capture === true,
          card: { brand: detectBrand(number).brand, last4: number.slice(-4) },
          decline,
        });
        if (outcome.kind === 'trigger' && outcome.trigger === 'unknown') {
          // Recorded, then the connection drops before any answer: only a sync can tell the caller.
          request.log.info({ authorization_id: recorded.id }, 'unknown-outcome trigger: connection dropped');
          reply.hijack();
          request.raw.socket.destroy();
          return;
        }
        return recorded;
      },
    );

    scope.post(
      '/v1/authorizations/:id/captures',
      {
        config: { access: 'acquirer:transact' },
        schema: {
          summary: 'Capture some or all of what is still authorized',
          tags,
          params: AuthorizationParams,
          body: CaptureBody,
          response: answers,
        },
      },
      async (request) => ledger.capture(request.params.id, request.body),
    );

    scope.post(
      '/v1/authorizations/:id/void',
      {
        config: { access: 'acquirer:transact' },
        schema: {
          summary: 'Void an authorization before anything is captured',
          tags,
          params: AuthorizationParams,
          body: VoidBody,
          response: answers,
        },
      },
      async (request) => ledger.void(request.params.id, request.body),
    );

    scope.post(
      '/v1/authorizations/:id/refunds',
      {
        config: { access: 'acquirer:transact' },
        schema: {
          summary: 'Refund some or all of what was captured',
          tags,
          params: AuthorizationParams,
          body: RefundBody,
          response: answers,
        },
      },
      async (request) => ledger.refund(request.params.id, request.body),
    );

    scope.get(
      '/v1/authorizations/:id',
      {
        config: { access: 'acquirer:transact' },
        schema: { summary: 'Read an authorization', tags, params: AuthorizationParams, response: answers },
      },
      async (request) => ledger.get(request.params.id),
    );

    scope.get(
      '/v1/authorizations',
      {
        config: { access: 'acquirer:transact' },
        schema: {
          summary: "Sync: find an authorization by the caller's reference",
          description: 'How a caller settles an attempt whose answer it never received.',
          tags,
          querystring: SyncQuery,
          response: answers,
        },
      },
      async (request) => {
        const found = ledger.findByReference(request.query.reference);
        if (!found) throw new CardholdError('authorization_not_found');
        return found;
      },
    );
  });
}
