-- Payments (issue 5): payment intents, their processor attempts, refunds and idempotency keys.
--
-- The api owns this schema. It holds tokens and CVV slot ids (references into the vault), never a card
-- number or a CVV: the payment method column is checked to be a token id.
CREATE SCHEMA payments;

CREATE TABLE payments.payment_intents (
  id                    text PRIMARY KEY,
  merchant_id           text NOT NULL REFERENCES identity.merchants (id),
  amount                bigint NOT NULL CHECK (amount > 0),
  currency              text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status                text NOT NULL CHECK (status IN ('requires_payment_method', 'requires_confirmation',
                          'requires_action', 'processing', 'requires_capture', 'succeeded', 'canceled')),
  capture_method        text NOT NULL CHECK (capture_method IN ('automatic', 'manual')),
  payment_method        text CHECK (payment_method ~ '^tok_[0-9A-Za-z]{22}$'),
  cvv_slot              text CHECK (cvv_slot ~ '^cvv_[0-9A-Za-z]{22}$'),
  card_brand            text,
  card_last4            text CHECK (card_last4 ~ '^[0-9]{4}$'),
  description           text,
  metadata              jsonb NOT NULL DEFAULT '{}',
  -- Authorized and not yet captured or reserved by a capture in flight.
  amount_capturable     bigint NOT NULL DEFAULT 0 CHECK (amount_capturable >= 0),
  -- Captured.
  amount_received       bigint NOT NULL DEFAULT 0 CHECK (amount_received >= 0),
  -- Refunded or reserved by a refund in flight; never more than what was captured.
  amount_refunded       bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount_received),
  connector             text,
  connector_payment_id  text,
  last_error            jsonb,
  cancellation_reason   text,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  CHECK (amount_capturable + amount_received <= amount)
);
CREATE INDEX payment_intents_merchant_created ON payments.payment_intents (merchant_id, created_at DESC, id DESC);
CREATE INDEX payment_intents_merchant_status ON payments.payment_intents (merchant_id, status, created_at DESC);

-- Every request to a processor, with its own status: "sent" (no answer yet) and "unknown" (the
-- answer was lost) are settled by the reconciler through the processor's status query.
CREATE TABLE payments.attempts (
  id                    text PRIMARY KEY,
  payment_id            text NOT NULL REFERENCES payments.payment_intents (id),
  merchant_id           text NOT NULL,
  kind                  text NOT NULL CHECK (kind IN ('authorize', 'capture', 'void', 'refund')),
  connector             text NOT NULL,
  amount                bigint,
  capture               boolean NOT NULL DEFAULT false,
  status                text NOT NULL CHECK (status IN ('sent', 'succeeded', 'declined', 'failed', 'unknown')),
  refund_id             text,
  connector_reference   text,
  decline_code          text,
  error_code            text,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempts_payment ON payments.attempts (payment_id, created_at);
CREATE INDEX attempts_unsettled ON payments.attempts (updated_at) WHERE status IN ('sent', 'unknown');

CREATE TABLE payments.refunds (
  id              text PRIMARY KEY,
  payment_id      text NOT NULL REFERENCES payments.payment_intents (id),
  merchant_id     text NOT NULL,
  amount          bigint NOT NULL CHECK (amount > 0),
  currency        text NOT NULL,
  status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  reason          text,
  metadata        jsonb NOT NULL DEFAULT '{}',
  failure_reason  text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_merchant_created ON payments.refunds (merchant_id, created_at DESC, id DESC);
CREATE INDEX refunds_payment ON payments.refunds (payment_id);

-- Stripe's idempotency semantics: the first response is replayed for 24 hours to the same key with the
-- same parameters. The hash covers method, path and body; responses hold no card data (the api has none).
CREATE TABLE payments.idempotency_keys (
  merchant_id      text NOT NULL,
  key              text NOT NULL,
  request_hash     bytea NOT NULL,
  state            text NOT NULL CHECK (state IN ('in_progress', 'done')),
  response_status  integer,
  response_type    text,
  response_body    text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_created ON payments.idempotency_keys (created_at);

GRANT USAGE ON SCHEMA payments TO cardhold_api_runtime;
GRANT SELECT, INSERT, UPDATE ON payments.payment_intents, payments.attempts, payments.refunds TO cardhold_api_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON payments.idempotency_keys TO cardhold_api_runtime;
