export type CardBrand =
  | 'visa'
  | 'mastercard'
  | 'amex'
  | 'discover'
  | 'diners'
  | 'jcb'
  | 'unionpay'
  | 'maestro'
  | 'unknown';

interface BrandRule {
  brand: Exclude<CardBrand, 'unknown'>;
  /** Inclusive IIN ranges; each is compared on as many leading PAN digits as its bounds have. */
  ranges: Array<[number, number]>;
  lengths: readonly number[];
  cvvLength: number;
}

// Ordered from most to least specific: Discover's China UnionPay co-brand range (622126–622925) must win
// over UnionPay's 62, Mastercard's 2-series over nothing, and Maestro is the broad fallback.
const rules: BrandRule[] = [
  {
    brand: 'amex',
    ranges: [
      [34, 34],
      [37, 37],
    ],
    lengths: [15],
    cvvLength: 4,
  },
  { brand: 'discover', ranges: [[622126, 622925]], lengths: [16, 17, 18, 19], cvvLength: 3 },
  { brand: 'discover', ranges: [[6011, 6011]], lengths: [16, 17, 18, 19], cvvLength: 3 },
  { brand: 'discover', ranges: [[644, 649]], lengths: [16, 17, 18, 19], cvvLength: 3 },
  { brand: 'discover', ranges: [[65, 65]], lengths: [16, 17, 18, 19], cvvLength: 3 },
  { brand: 'jcb', ranges: [[3528, 3589]], lengths: [16, 17, 18, 19], cvvLength: 3 },
  {
    brand: 'diners',
    ranges: [
      [300, 305],
      [309, 309],
    ],
    lengths: [14, 15, 16, 17, 18, 19],
    cvvLength: 3,
  },
  {
    brand: 'diners',
    ranges: [
      [36, 36],
      [38, 39],
    ],
    lengths: [14, 15, 16, 17, 18, 19],
    cvvLength: 3,
  },
  { brand: 'mastercard', ranges: [[51, 55]], lengths: [16], cvvLength: 3 },
  { brand: 'mastercard', ranges: [[2221, 2720]], lengths: [16], cvvLength: 3 },
  { brand: 'visa', ranges: [[4, 4]], lengths: [13, 16, 19], cvvLength: 3 },
  {
    brand: 'unionpay',
    ranges: [
      [62, 62],
      [81, 81],
    ],
    lengths: [16, 17, 18, 19],
    cvvLength: 3,
  },
  {
    brand: 'maestro',
    ranges: [
      [50, 50],
      [56, 58],
      [63, 63],
      [67, 67],
      [6, 6],
    ],
    lengths: [12, 13, 14, 15, 16, 17, 18, 19],
    cvvLength: 3,
  },
];

export interface BrandInfo {
  brand: CardBrand;
  lengths: readonly number[];
  cvvLength: number | 'any';
}

const unknownBrand: BrandInfo = {
  brand: 'unknown',
  lengths: [12, 13, 14, 15, 16, 17, 18, 19],
  cvvLength: 'any',
};

/** Brand by IIN range; cards outside every known range are accepted as `unknown` with ISO/IEC 7812 lengths. */
export function detectBrand(pan: string): BrandInfo {
  for (const rule of rules) {
    for (const [low, high] of rule.ranges) {
      const prefixDigits = String(low).length;
      if (pan.length < prefixDigits) continue;
      const prefix = Number(pan.slice(0, prefixDigits));
      if (prefix >= low && prefix <= high)
        return { brand: rule.brand, lengths: rule.lengths, cvvLength: rule.cvvLength };
    }
  }
  return unknownBrand;
}

/** Expected CVV length for a stored brand. */
export function cvvLengthOf(brand: string): number | 'any' {
  return rules.find((rule) => rule.brand === brand)?.cvvLength ?? 'any';
}
