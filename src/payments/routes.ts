import type { Static } from 'typebox';
import { accessOf } from '../auth/authenticate.ts';
import type { Permission } from '../auth/permissions.ts';
import type { AppInstance } from '../http/create-server.ts';
import { acceptFormBodies } from '../http/form-body.ts';
import { CardholdError } from '../shared/errors.ts';
import type { Idempotency } from './idempotency.ts';
import type { PaymentService } from './payment-service.ts';
import {
  Attempt,
  CancelPaymentBody,
  CapturePaymentBody,
  ConfirmPaymentBody,
  CreatePaymentBody,
  CreateRefundBody,
  ListPaymentsQuery,
  ListRefundsQuery,
  listOf,
  PaymentIntent,
  PaymentParams,
  Refund,
  RefundParams,
} from './schemas.ts';
import { stripeErrorExtension } from './stripe-error.ts';

const security = [{ apiKey: [] }];
const captureMethod = (value: string | undefined) =>
  value === undefined ? undefined : value === 'manual' ? ('manual' as const) : ('automatic' as const);

/**
 * The payment API: Stripe's `/v1/payment_intents` and `/v1/refunds`, taking JSON or Stripe's
 * form-encoded bodies, with `Idempotency-Key` on every POST, Stripe's error object inside each problem,
 * and a cardhold token (and CVV slot) as the payment method. The official `stripe` SDK works against it.
 */
export function registerPaymentRoutes(
  app: AppInstance,
  deps: { payments: PaymentService; idempotency: Idempotency },
): void {
  const { payments, idempotency } = deps;
  acceptFormBodies(app);
  const config = (access: Permission) => ({ access, problemExtension: stripeErrorExtension });

  app.post(
    '/v1/payment_intents',
    {
      config: config('payments:write'),
      schema: {
        summary: 'Create a payment (and confirm it with confirm=true)',
        tags: ['payments'],
        security,
        body: CreatePaymentBody,
        response: { 200: PaymentIntent },
      },
    },
    async (request, reply) => {
      const ctx = accessOf(request);
      const body = request.body as Static<typeof CreatePaymentBody>;
      return idempotency.handle(
        request,
        reply,
        ctx.merchantId,
        async () => {
          const params = {
            amount: body.amount,
            currency: body.currency,
            captureMethod: captureMethod(body.capture_method),
            paymentMethod: body.payment_method,
            cvvSlot: body.payment_method_options?.card?.cvc_token,
            description: body.description,
            metadata: body.metadata,
          };
          if (body.confirm) {
            // Refused before anything is written: no payment is left behind by a confirm that cannot run.
            if (!body.payment_method) {
              throw new CardholdError('request_invalid', {
                field: 'payment_method',
                detail: 'confirm=true needs a payment_method',
              });
            }
            return {
              status: 200,
              body: await payments.createAndConfirm(ctx, { ...params, paymentMethod: body.payment_method }),
            };
          }
          return { status: 200, body: await payments.create(ctx, params) };
        },
        { createsPayment: true },
      );
    },
  );

  app.get(
    '/v1/payment_intents',
    {
      config: config('payments:read'),
      schema: {
        summary: 'List payments, newest first',
        tags: ['payments'],
        security,
        querystring: ListPaymentsQuery,
        response: { 200: listOf(PaymentIntent) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await payments.list(accessOf(request), {
        limit: q.limit,
        startingAfter: q.starting_after,
        status: q.status,
        createdGte: q['created[gte]'],
        createdLte: q['created[lte]'],
      });
      return { object: 'list' as const, url: '/v1/payment_intents', ...page };
    },
  );

  app.get(
    '/v1/payment_intents/:id',
    {
      config: config('payments:read'),
      schema: {
        summary: 'Retrieve a payment',
        tags: ['payments'],
        security,
        params: PaymentParams,
        response: { 200: PaymentIntent },
      },
    },
    async (request) => payments.get(accessOf(request), request.params.id),
  );

  app.get(
    '/v1/payment_intents/:id/attempts',
    {
      config: config('payments:read'),
      schema: {
        summary: 'The processor attempts of a payment, with their own statuses',
        description:
          'Attempt statuses: sent (no answer yet), succeeded, declined, failed (not processed), unknown (the answer was lost; the reconciler settles it).',
        tags: ['payments'],
        security,
        params: PaymentParams,
        response: { 200: listOf(Attempt) },
      },
    },
    async (request) => {
      const data = await payments.attempts(accessOf(request), request.params.id);
      return {
        object: 'list' as const,
        url: `/v1/payment_intents/${request.params.id}/attempts`,
        data,
        has_more: false,
      };
    },
  );

  app.post(
    '/v1/payment_intents/:id/confirm',
    {
      config: config('payments:write'),
      schema: {
        summary: 'Confirm (authorize) a payment',
        tags: ['payments'],
        security,
        params: PaymentParams,
        body: ConfirmPaymentBody,
        response: { 200: PaymentIntent },
      },
    },
    async (request, reply) => {
      const ctx = accessOf(request);
      const body = (request.body ?? {}) as Static<typeof ConfirmPaymentBody>;
      return idempotency.handle(request, reply, ctx.merchantId, async () => ({
        status: 200,
        body: await payments.confirm(ctx, request.params.id, {
          paymentMethod: body.payment_method,
          cvvSlot: body.payment_method_options?.card?.cvc_token,
          captureMethod: captureMethod(body.capture_method),
        }),
      }));
    },
  );

  app.post(
    '/v1/payment_intents/:id/capture',
    {
      config: config('payments:write'),
      schema: {
        summary: 'Capture all or part of an authorized payment',
        tags: ['payments'],
        security,
        params: PaymentParams,
        body: CapturePaymentBody,
        response: { 200: PaymentIntent },
      },
    },
    async (request, reply) => {
      const ctx = accessOf(request);
      const body = (request.body ?? {}) as Static<typeof CapturePaymentBody>;
      return idempotency.handle(request, reply, ctx.merchantId, async () => ({
        status: 200,
        body: await payments.capture(ctx, request.params.id, {
          amountToCapture: body.amount_to_capture,
          finalCapture: body.final_capture,
        }),
      }));
    },
  );

  app.post(
    '/v1/payment_intents/:id/cancel',
    {
      config: config('payments:write'),
      schema: {
        summary: 'Cancel a payment (voiding its authorization)',
        tags: ['payments'],
        security,
        params: PaymentParams,
        body: CancelPaymentBody,
        response: { 200: PaymentIntent },
      },
    },
    async (request, reply) => {
      const ctx = accessOf(request);
      const body = (request.body ?? {}) as Static<typeof CancelPaymentBody>;
      return idempotency.handle(request, reply, ctx.merchantId, async () => ({
        status: 200,
        body: await payments.cancel(ctx, request.params.id, { cancellationReason: body.cancellation_reason }),
      }));
    },
  );

  app.post(
    '/v1/refunds',
    {
      config: config('refunds:write'),
      schema: {
        summary: 'Refund all or part of a captured payment',
        tags: ['refunds'],
        security,
        body: CreateRefundBody,
        response: { 200: Refund },
      },
    },
    async (request, reply) => {
      const ctx = accessOf(request);
      const body = request.body as Static<typeof CreateRefundBody>;
      return idempotency.handle(request, reply, ctx.merchantId, async () => ({
        status: 200,
        body: await payments.refund(ctx, {
          paymentId: body.payment_intent,
          amount: body.amount,
          reason: body.reason,
          metadata: body.metadata,
        }),
      }));
    },
  );

  app.get(
    '/v1/refunds',
    {
      config: config('payments:read'),
      schema: {
        summary: 'List refunds, newest first',
        tags: ['refunds'],
        security,
        querystring: ListRefundsQuery,
        response: { 200: listOf(Refund) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await payments.listRefunds(accessOf(request), {
        limit: q.limit,
        paymentId: q.payment_intent,
        startingAfter: q.starting_after,
      });
      return { object: 'list' as const, url: '/v1/refunds', ...page };
    },
  );

  app.get(
    '/v1/refunds/:id',
    {
      config: config('payments:read'),
      schema: {
        summary: 'Retrieve a refund',
        tags: ['refunds'],
        security,
        params: RefundParams,
        response: { 200: Refund },
      },
    },
    async (request) => payments.getRefund(accessOf(request), request.params.id),
  );
}
