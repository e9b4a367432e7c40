import { Type } from 'typebox';
import { aliasPattern, cvvSlotIdPattern, tokenIdPattern } from './identifiers.ts';
import { BATCH_LIMIT } from './token-service.ts';

const CvvOptions = Type.Object(
  {
    ttl_seconds: Type.Optional(
      Type.Integer({ description: 'Lifetime of the CVV slot, 1 to 3600 seconds (default 900)' }),
    ),
    max_uses: Type.Optional(
      Type.Integer({ description: 'How many authorization attempts may use the CVV, 1 to 10 (default 3)' }),
    ),
  },
  { additionalProperties: false },
);

export const TokenizeBody = Type.Object(
  {
    pan: Type.String({ minLength: 1, maxLength: 64, description: 'The card number, digits only' }),
    exp_month: Type.Integer({ description: '1 to 12' }),
    exp_year: Type.Integer({ description: 'Four-digit year' }),
    holder_name: Type.Optional(Type.String({ maxLength: 200 })),
    cvv: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 8,
        description: 'Kept only in a volatile CVV slot until authorization',
      }),
    ),
    cvv_options: Type.Optional(CvvOptions),
    dedup: Type.Optional(
      Type.Boolean({ description: 'Return the existing token if this merchant already tokenized the card' }),
    ),
    expires_at: Type.Optional(
      Type.String({ format: 'date-time', description: 'Delete the token after this time' }),
    ),
    format_preserving_alias: Type.Optional(
      Type.Boolean({ description: 'Also issue a Luhn-invalid alias with the BIN and last four of the card' }),
    ),
  },
  { additionalProperties: false },
);

export const BatchBody = Type.Object(
  { cards: Type.Array(TokenizeBody, { minItems: 1, maxItems: BATCH_LIMIT }) },
  { additionalProperties: false },
);

export const TokenView = Type.Object({
  id: Type.String(),
  object: Type.Literal('token'),
  alias: Type.Union([Type.String(), Type.Null()]),
  brand: Type.String(),
  bin: Type.String({ description: 'First 6 digits (first 8 for 16+ digit cards)' }),
  last4: Type.String(),
  exp_month: Type.Integer(),
  exp_year: Type.Integer(),
  fingerprint: Type.String({ description: 'Keyed hash of the card number, stable per merchant' }),
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const CvvSlotView = Type.Object({
  id: Type.String(),
  object: Type.Literal('cvv_slot'),
  token_id: Type.String(),
  uses_remaining: Type.Integer(),
  expires_at: Type.String({ format: 'date-time' }),
});

export const TokenizeResponse = Type.Object({
  token: TokenView,
  deduplicated: Type.Boolean(),
  cvv_slot: Type.Union([CvvSlotView, Type.Null()]),
});

const ItemError = Type.Object({
  code: Type.String(),
  title: Type.String(),
  detail: Type.String(),
  field: Type.Optional(Type.String()),
});

export const BatchResponse = Type.Object({
  results: Type.Array(
    Type.Object({
      index: Type.Integer(),
      status: Type.Union([Type.Literal('created'), Type.Literal('failed')]),
      result: Type.Optional(TokenizeResponse),
      error: Type.Optional(ItemError),
    }),
  ),
});

export const TokenParams = Type.Object({
  id: Type.String({
    pattern: `(${tokenIdPattern})|(${aliasPattern})`,
    description: 'Token id or format-preserving alias',
  }),
});

export const TokenIdParams = Type.Object({ id: Type.String({ pattern: tokenIdPattern }) });

export const CvvSlotParams = Type.Object({ id: Type.String({ pattern: cvvSlotIdPattern }) });

export const CvvSlotBody = Type.Object(
  {
    cvv: Type.String({ minLength: 1, maxLength: 8 }),
    ttl_seconds: Type.Optional(Type.Integer()),
    max_uses: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

export const ListQuery = Type.Object(
  {
    fingerprint: Type.Optional(Type.String({ pattern: '^fp_[A-Za-z0-9_-]{43}$' })),
    last4: Type.Optional(Type.String({ pattern: '^[0-9]{4}$' })),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
    starting_after: Type.Optional(Type.String({ pattern: tokenIdPattern })),
  },
  { additionalProperties: false },
);

export const TokenList = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(TokenView),
  has_more: Type.Boolean(),
});
