import type { CardMatch } from './card-match.ts';

export type Confidence = 'high' | 'medium' | 'low';

// "card", "cvv", "cvc", "expir(y|ation)" and "credit" anywhere (cardNumber, card_no, credit_card); the
// short ones ("pan", "cc", "exp", "acct") only where a word or an identifier starts, so "company" or
// "access" do not count.
const CONTEXT_KEYWORD = /card|cvv|cvc|expir|credit|(?:^|[^a-z])(?:pan|cc|exp|acct)/i;

/** Whether the text next to a number (same line) names card data. */
export function hasCardContext(nearby: string): boolean {
  return CONTEXT_KEYWORD.test(nearby);
}

// Brands whose ranges are narrow and whose lengths are exact; Maestro and UnionPay cover whole leading
// digits (5x, 6x, 62, 81) with most lengths, so a random id falls into them far more often.
const narrowBrands = new Set(['visa', 'mastercard', 'amex', 'discover', 'jcb', 'diners']);

/**
 * high: a card keyword nearby. medium: a narrow-range brand at its usual length (15 or 16 digits), or
 * written in card-style groups. low: the rest (broad ranges, unusual lengths, no context).
 */
export function confidenceOf(match: CardMatch, nearby: string, cardGrouped: boolean): Confidence {
  if (hasCardContext(nearby)) return 'high';
  if (cardGrouped || (narrowBrands.has(match.brand) && (match.length === 15 || match.length === 16)))
    return 'medium';
  return 'low';
}
