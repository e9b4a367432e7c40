import { Type } from 'typebox';
import { cvvSlotIdPattern, paymentIdPattern, refundIdPattern, tokenIdPattern } from '../vault/identifiers.ts';
import { paymentStatuses } from './payment-status.ts';

const literals = <const T extends string[]>(values: readonly [...T]) => Type.Enum(values);

// TypeBox turns a Record's key schema into a pattern and drops its length: propertyNames keeps it.
const Metadata = Type.Record(Type.String(), Type.String({ maxLength: 500 }), {
  maxProperties: 50,
  propertyNames: { minLength: 1, maxLength: 40 },
  description: 'Your own key-value pairs; never card data (a card number is refused)',
});

const CaptureMethod = literals(['automatic', 'automatic_async', 'manual']);

const PaymentMethodOptions = Type.Object(
  {
    card: Type.Optional(
      Type.Object(
        {
          cvc_token: Type.Optional(
            Type.String({
              pattern: cvvSlotIdPattern,
              description: 'A CVV slot of the token, from the vault',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const CreatePaymentBody = Type.Object(
  {
    amount: Type.Integer({
      description: 'In the currency’s minor unit (USD 10.00 is 1000, JPY 1000 is 1000)',
    }),
    currency: Type.String({ pattern: '^[A-Za-z]{3}$', description: 'ISO 4217 code' }),
    capture_method: Type.Optional(CaptureMethod),
    confirm: Type.Optional(Type.Boolean({ description: 'Confirm (authorize) at once' })),
    payment_method: Type.Optional(Type.String({ pattern: tokenIdPattern, description: 'A cardhold token' })),
    payment_method_types: Type.Optional(Type.Array(Type.Literal('card'), { maxItems: 1 })),
    payment_method_options: Type.Optional(PaymentMethodOptions),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const ConfirmPaymentBody = Type.Object(
  {
    payment_method: Type.Optional(Type.String({ pattern: tokenIdPattern })),
    payment_method_options: Type.Optional(PaymentMethodOptions),
    capture_method: Type.Optional(CaptureMethod),
  },
  { additionalProperties: false },
);

export const CapturePaymentBody = Type.Object(
  {
    amount_to_capture: Type.Optional(Type.Integer({ description: 'Default: everything still capturable' })),
    final_capture: Type.Optional(
      Type.Boolean({ description: 'false keeps the rest capturable (multiple captures)' }),
    ),
  },
  { additionalProperties: false },
);

export const CancelPaymentBody = Type.Object(
  {
    cancellation_reason: Type.Optional(
      literals(['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned']),
    ),
  },
  { additionalProperties: false },
);

export const CreateRefundBody = Type.Object(
  {
    payment_intent: Type.String({ pattern: paymentIdPattern }),
    amount: Type.Optional(Type.Integer({ description: 'Default: everything captured and not yet refunded' })),
    reason: Type.Optional(literals(['duplicate', 'fraudulent', 'requested_by_customer'])),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const PaymentParams = Type.Object({ id: Type.String({ pattern: paymentIdPattern }) });
export const RefundParams = Type.Object({ id: Type.String({ pattern: refundIdPattern }) });

/**
 * The last second of year 9999 (9999-12-31T23:59:59Z), where four-digit years (ISO 8601, most clients'
 * date types) end. Larger filters are refused as bad input: past PostgreSQL's own range, to_timestamp
 * overflowed and the list answered 500.
 */
export const MAX_UNIX_SECONDS = 253_402_300_799;

const UnixSeconds = (description: string) =>
  Type.Integer({ minimum: 0, maximum: MAX_UNIX_SECONDS, description: `${description}, in Unix seconds` });

export const ListPaymentsQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
    starting_after: Type.Optional(Type.String({ pattern: paymentIdPattern })),
    status: Type.Optional(literals([...paymentStatuses])),
    'created[gte]': Type.Optional(UnixSeconds('Created at or after')),
    'created[lte]': Type.Optional(UnixSeconds('Created at or before')),
  },
  { additionalProperties: false },
);

export const ListRefundsQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
    starting_after: Type.Optional(Type.String({ pattern: refundIdPattern })),
    payment_intent: Type.Optional(Type.String({ pattern: paymentIdPattern })),
  },
  { additionalProperties: false },
);

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

export const PaymentIntent = Type.Object({
  id: Type.String(),
  object: Type.Literal('payment_intent'),
  amount: Type.Integer(),
  amount_capturable: Type.Integer(),
  amount_received: Type.Integer(),
  amount_refunded: Type.Integer(),
  currency: Type.String(),
  status: literals([...paymentStatuses]),
  capture_method: literals(['automatic', 'manual']),
  confirmation_method: Type.Literal('automatic'),
  payment_method: Nullable(Type.String()),
  payment_method_types: Type.Array(Type.String()),
  card: Nullable(Type.Object({ brand: Type.String(), last4: Type.String() })),
  description: Nullable(Type.String()),
  metadata: Type.Record(Type.String(), Type.String()),
  last_payment_error: Nullable(
    Type.Object({
      type: Type.String(),
      code: Type.String(),
      decline_code: Nullable(Type.String()),
      message: Type.String(),
    }),
  ),
  cancellation_reason: Nullable(Type.String()),
  connector: Nullable(Type.String()),
  created: Type.Integer(),
  livemode: Type.Boolean(),
});

export const Refund = Type.Object({
  id: Type.String(),
  object: Type.Literal('refund'),
  amount: Type.Integer(),
  currency: Type.String(),
  payment_intent: Type.String(),
  status: literals(['pending', 'succeeded', 'failed']),
  reason: Nullable(Type.String()),
  metadata: Type.Record(Type.String(), Type.String()),
  failure_reason: Nullable(Type.String()),
  created: Type.Integer(),
});

export const Attempt = Type.Object({
  id: Type.String(),
  object: Type.Literal('payment_attempt'),
  kind: literals(['authorize', 'capture', 'void', 'refund']),
  connector: Type.String(),
  amount: Nullable(Type.Integer()),
  status: literals(['sent', 'succeeded', 'declined', 'failed', 'unknown']),
  refund: Nullable(Type.String()),
  decline_code: Nullable(Type.String()),
  error_code: Nullable(Type.String()),
  created: Type.Integer(),
  updated: Type.Integer(),
});

export const listOf = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({
    object: Type.Literal('list'),
    data: Type.Array(item),
    has_more: Type.Boolean(),
    url: Type.String(),
  });
