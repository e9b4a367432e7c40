import { type Static, Type } from 'typebox';
import { declineCodes } from './test-cards.ts';

/** Authorization ids: `aqa_` and 22 base62 characters; captures `aqc_`, refunds `aqr_`. */
export const authorizationIdPattern = '^aqa_[0-9A-Za-z]{22}$';

const Reference = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9_-]+$',
  description: "The caller's id for this operation; repeating it replays the first result",
});
// An upper bound keeps sums of captures and refunds exact integers.
const Amount = Type.Integer({ minimum: 1, maximum: 999_999_999_999, description: 'Minor units' });

export const AuthorizeBody = Type.Object(
  {
    reference: Reference,
    merchant: Type.String({ minLength: 1, maxLength: 64 }),
    amount: Amount,
    currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217, upper case' }),
    capture: Type.Optional(
      Type.Boolean({ default: false, description: 'Authorize and capture in one step' }),
    ),
    card: Type.Object(
      {
        number: Type.String({ pattern: '^[0-9]{12,19}$', description: 'Never echoed or logged' }),
        exp_month: Type.Integer({ minimum: 1, maximum: 12 }),
        exp_year: Type.Integer({ minimum: 1000, maximum: 9999, description: 'Four digits' }),
        cvc: Type.Optional(Type.String({ pattern: '^[0-9]{3,4}$', description: 'Never echoed or logged' })),
        holder_name: Type.Optional(Type.String({ maxLength: 200 })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const CaptureBody = Type.Object(
  {
    amount: Amount,
    reference: Reference,
    final: Type.Optional(
      Type.Boolean({
        description:
          'The last capture: what is left of the authorization is released to the cardholder (released_amount) and nothing more can be captured. Default false.',
      }),
    ),
  },
  { additionalProperties: false },
);
export const RefundBody = Type.Object(
  { amount: Amount, reference: Reference },
  { additionalProperties: false },
);
export const VoidBody = Type.Object({ reference: Reference }, { additionalProperties: false });

export const AuthorizationParams = Type.Object({
  id: Type.String({ pattern: authorizationIdPattern }),
});
export const SyncQuery = Type.Object({ reference: Reference }, { additionalProperties: false });

const Movement = Type.Object({
  id: Type.String(),
  reference: Type.String(),
  amount: Type.Integer(),
  created_at: Type.String({ format: 'date-time' }),
});

/** What every acquirer route answers: the authorization as the ledger now holds it. */
export const Authorization = Type.Object({
  id: Type.String(),
  object: Type.Literal('authorization'),
  reference: Type.String(),
  merchant: Type.String(),
  status: Type.Enum(['approved', 'declined']),
  decline_code: Type.Union([Type.Enum(declineCodes), Type.Null()]),
  approval_code: Type.Union([Type.String(), Type.Null()]),
  amount: Type.Integer(),
  currency: Type.String(),
  authorized_amount: Type.Integer(),
  captured_amount: Type.Integer(),
  refunded_amount: Type.Integer(),
  /** Authorized, never captured, and given back by a final capture. */
  released_amount: Type.Integer(),
  state: Type.Enum(['authorized', 'partially_captured', 'captured', 'voided', 'declined']),
  card: Type.Object({ brand: Type.String(), last4: Type.String() }),
  captures: Type.Array(Movement),
  refunds: Type.Array(Movement),
  created_at: Type.String({ format: 'date-time' }),
});

export type AuthorizeRequest = Static<typeof AuthorizeBody>;
export type CaptureRequest = Static<typeof CaptureBody>;
export type RefundRequest = Static<typeof RefundBody>;
export type VoidRequest = Static<typeof VoidBody>;
export type AuthorizationView = Static<typeof Authorization>;
export type AuthorizationState = AuthorizationView['state'];
