import type { PaymentStatus } from './payment-status.ts';

/** A payment intent row as stored (bigint columns arrive as strings from postgres.js). */
export interface PaymentRow {
  id: string;
  merchant_id: string;
  amount: string | number;
  currency: string;
  status: PaymentStatus;
  capture_method: 'automatic' | 'manual';
  payment_method: string | null;
  cvv_slot: string | null;
  card_brand: string | null;
  card_last4: string | null;
  description: string | null;
  metadata: Record<string, string>;
  amount_capturable: string | number;
  amount_received: string | number;
  amount_refunded: string | number;
  connector: string | null;
  connector_payment_id: string | null;
  last_error: PaymentError | null;
  cancellation_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface PaymentError {
  type: 'card_error' | 'api_error';
  code: string;
  decline_code: string | null;
  message: string;
}

export interface RefundRow {
  id: string;
  payment_id: string;
  merchant_id: string;
  amount: string | number;
  currency: string;
  status: 'pending' | 'succeeded' | 'failed';
  reason: string | null;
  metadata: Record<string, string>;
  failure_reason: string | null;
  created_at: Date;
}

export interface AttemptRow {
  id: string;
  payment_id: string;
  merchant_id: string;
  kind: 'authorize' | 'capture' | 'void' | 'refund';
  connector: string;
  amount: string | number | null;
  capture: boolean;
  status: 'sent' | 'succeeded' | 'declined' | 'failed' | 'unknown';
  refund_id: string | null;
  connector_reference: string | null;
  decline_code: string | null;
  error_code: string | null;
  created_at: Date;
  updated_at: Date;
}

const unix = (date: Date) => Math.floor(date.getTime() / 1000);

/** The merchant-facing object, shaped like Stripe's PaymentIntent (currency in lower case, as Stripe). */
export function paymentView(row: PaymentRow) {
  return {
    id: row.id,
    object: 'payment_intent' as const,
    amount: Number(row.amount),
    amount_capturable: Number(row.amount_capturable),
    amount_received: Number(row.amount_received),
    amount_refunded: Number(row.amount_refunded),
    currency: row.currency.toLowerCase(),
    status: row.status,
    capture_method: row.capture_method,
    confirmation_method: 'automatic' as const,
    payment_method: row.payment_method,
    payment_method_types: ['card'],
    card: row.card_brand && row.card_last4 ? { brand: row.card_brand, last4: row.card_last4 } : null,
    description: row.description,
    metadata: row.metadata,
    last_payment_error: row.last_error,
    cancellation_reason: row.cancellation_reason,
    connector: row.connector,
    created: unix(row.created_at),
    livemode: false,
  };
}

export type PaymentView = ReturnType<typeof paymentView>;

export function refundView(row: RefundRow) {
  return {
    id: row.id,
    object: 'refund' as const,
    amount: Number(row.amount),
    currency: row.currency.toLowerCase(),
    payment_intent: row.payment_id,
    status: row.status,
    reason: row.reason,
    metadata: row.metadata,
    failure_reason: row.failure_reason,
    created: unix(row.created_at),
  };
}

export function attemptView(row: AttemptRow) {
  return {
    id: row.id,
    object: 'payment_attempt' as const,
    kind: row.kind,
    connector: row.connector,
    amount: row.amount === null ? null : Number(row.amount),
    status: row.status,
    refund: row.refund_id,
    decline_code: row.decline_code,
    error_code: row.error_code,
    created: unix(row.created_at),
    updated: unix(row.updated_at),
  };
}
