/**
 * The test acquirer's card table: which published test card number gives which outcome. This module's
 * purpose is test cards, so it is the one place in src/ that holds card-number literals; they are
 * processors' documented test numbers (Stripe's for the declines) plus three Luhn-valid numbers of our
 * own for the failure triggers, and test/fixtures/cards.ts lists every one for the artifact scan.
 * docs/test-acquirer.md documents the same table.
 */

export const declineCodes = [
  'generic_decline',
  'insufficient_funds',
  'lost_card',
  'stolen_card',
  'expired_card',
  'incorrect_cvc',
  'processing_error',
] as const;

export type DeclineCode = (typeof declineCodes)[number];

/**
 * What the acquirer does with a card. `timeout` holds the request open and records nothing;
 * `server_error` answers 503 at once and records nothing; `unknown` records an approval and drops the
 * connection without answering, an outcome only a sync can settle.
 */
export type TestCardOutcome =
  | { kind: 'approve' }
  | { kind: 'decline'; code: DeclineCode }
  | { kind: 'trigger'; trigger: 'timeout' | 'server_error' | 'unknown' };

const decline = (code: DeclineCode): TestCardOutcome => ({ kind: 'decline', code });
const trigger = (name: 'timeout' | 'server_error' | 'unknown'): TestCardOutcome => ({
  kind: 'trigger',
  trigger: name,
});

/** Card number → outcome. Every Luhn-valid number not listed here is approved. */
export const testCardOutcomes: ReadonlyMap<string, TestCardOutcome> = new Map([
  ['4242424242424242', { kind: 'approve' }],
  ['4000000000000002', decline('generic_decline')],
  ['4000000000009995', decline('insufficient_funds')],
  ['4000000000009987', decline('lost_card')],
  ['4000000000009979', decline('stolen_card')],
  ['4000000000000069', decline('expired_card')],
  ['4000000000000127', decline('incorrect_cvc')],
  ['4000000000000119', decline('processing_error')],
  ['4000000000000135', trigger('timeout')],
  ['4000000000000143', trigger('server_error')],
  ['4000000000000150', trigger('unknown')],
]);

export function outcomeOf(cardNumber: string): TestCardOutcome {
  return testCardOutcomes.get(cardNumber) ?? { kind: 'approve' };
}
