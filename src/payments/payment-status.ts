import { CardholdError } from '../shared/errors.ts';

/** Merchant-facing statuses, in Stripe's vocabulary (requires_action is reserved for 3-D Secure). */
export const paymentStatuses = [
  'requires_payment_method',
  'requires_confirmation',
  'requires_action',
  'processing',
  'requires_capture',
  'succeeded',
  'canceled',
] as const;
export type PaymentStatus = (typeof paymentStatuses)[number];

/** What a merchant (or support operator) can ask of a payment. */
export const paymentActions = ['set_payment_method', 'confirm', 'capture', 'cancel', 'refund'] as const;
export type PaymentAction = (typeof paymentActions)[number];

/**
 * The whole state machine as data: each status and the actions it allows. Everything not listed is
 * refused with `payment_state_invalid`. The transitions each action makes are in payment-service.ts:
 * confirm → processing → requires_capture | succeeded | requires_payment_method (declined) |
 * requires_confirmation (no processor reachable; nothing charged); capture → requires_capture (more
 * to capture) | succeeded; cancel → canceled; refund leaves the status as it is.
 */
export const allowedActions: Readonly<Record<PaymentStatus, readonly PaymentAction[]>> = {
  requires_payment_method: ['set_payment_method', 'confirm', 'cancel'],
  requires_confirmation: ['set_payment_method', 'confirm', 'cancel'],
  requires_action: ['cancel'],
  processing: [],
  requires_capture: ['capture', 'cancel'],
  succeeded: ['refund'],
  canceled: [],
};

export function isAllowed(status: PaymentStatus, action: PaymentAction): boolean {
  return allowedActions[status].includes(action);
}

export function assertAllowed(status: PaymentStatus, action: PaymentAction): void {
  if (!isAllowed(status, action)) {
    throw new CardholdError('payment_state_invalid', {
      detail: `A payment in status ${status} cannot be ${pastTense[action]}`,
    });
  }
}

const pastTense: Record<PaymentAction, string> = {
  set_payment_method: 'given a new payment method',
  confirm: 'confirmed',
  capture: 'captured',
  cancel: 'canceled',
  refund: 'refunded',
};
