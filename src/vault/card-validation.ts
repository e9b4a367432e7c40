import { CardholdError } from '../shared/errors.ts';
import { luhnValid } from '../shared/pan-detect.ts';
import type { Secret } from '../shared/secret.ts';
import { type CardBrand, detectBrand } from './card-brands.ts';

export interface CardInput {
  pan: Secret<string>;
  expMonth: number;
  expYear: number;
  holderName?: string | undefined;
}

export interface ValidCard {
  pan: Secret<string>;
  brand: CardBrand;
  /** First 8 digits for PANs of 16 or more digits, else first 6 (PCI DSS 3.4.1 and the SSC's BIN FAQ). */
  bin: string;
  last4: string;
  panLength: number;
  expMonth: number;
  expYear: number;
  holderName: string | undefined;
  cvvLength: number | 'any';
}

/**
 * Validates a card and derives its display metadata. Errors name the field (prefixed by `path`) and
 * never carry the value.
 */
export function validateCard(input: CardInput, now: Date, path = ''): ValidCard {
  const digits = input.pan.expose();
  const field = (name: string) => (path ? `${path}.${name}` : name);
  if (!/^[0-9]+$/.test(digits)) {
    throw new CardholdError('card_number_invalid', {
      field: field('pan'),
      detail: 'The card number must contain digits only',
    });
  }
  if (digits.length < 12 || digits.length > 19) {
    throw new CardholdError('card_number_length_invalid', {
      field: field('pan'),
      detail: 'A card number has 12 to 19 digits',
    });
  }
  const brand = detectBrand(digits);
  if (!brand.lengths.includes(digits.length)) {
    throw new CardholdError('card_number_length_invalid', {
      field: field('pan'),
      detail: `A ${brand.brand} card number has ${brand.lengths.join(', ')} digits`,
    });
  }
  if (!luhnValid(digits)) throw new CardholdError('card_number_luhn_failed', { field: field('pan') });

  validateExpiry(input.expMonth, input.expYear, now, field);
  const holderName = validateHolderName(input.holderName, field('holder_name'));
  const bin = digits.slice(0, digits.length >= 16 ? 8 : 6);
  return {
    pan: input.pan,
    brand: brand.brand,
    bin,
    last4: digits.slice(-4),
    panLength: digits.length,
    expMonth: input.expMonth,
    expYear: input.expYear,
    holderName,
    cvvLength: brand.cvvLength,
  };
}

function validateExpiry(month: number, year: number, now: Date, field: (name: string) => string): void {
  if (!Number.isInteger(month) || month < 1 || month > 12) {
    throw new CardholdError('card_expiry_invalid', {
      field: field('exp_month'),
      detail: 'The expiry month must be 1 to 12',
    });
  }
  const thisYear = now.getUTCFullYear();
  if (!Number.isInteger(year) || year < 2000 || year > thisYear + 50) {
    throw new CardholdError('card_expiry_invalid', {
      field: field('exp_year'),
      detail: 'The expiry year must be a four-digit year no more than 50 years ahead',
    });
  }
  // A card is valid through the last day of its expiry month.
  const thisMonth = now.getUTCMonth() + 1;
  if (year < thisYear || (year === thisYear && month < thisMonth)) {
    throw new CardholdError('card_expired', { field: field('exp_year') });
  }
}

function validateHolderName(name: string | undefined, field: string): string | undefined {
  if (name === undefined) return undefined;
  const trimmed = name.normalize('NFC').trim();
  if (trimmed.length === 0 || trimmed.length > 100) {
    throw new CardholdError('holder_name_invalid', {
      field,
      detail: 'The holder name must have 1 to 100 characters',
    });
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f-\u009f]/.test(trimmed)) {
    throw new CardholdError('holder_name_invalid', {
      field,
      detail: 'The holder name contains control characters',
    });
  }
  // A card number pasted into the name field must not be stored unencrypted in logs or elsewhere.
  if (/\d{8,}/.test(trimmed.replace(/[\s-]/g, ''))) {
    throw new CardholdError('holder_name_invalid', {
      field,
      detail: 'The holder name must not contain long digit runs',
    });
  }
  return trimmed;
}

export function validateCvv(cvv: Secret<string>, expected: number | 'any', field: string): void {
  const value = cvv.expose();
  const ok =
    expected === 'any' ? /^[0-9]{3,4}$/.test(value) : value.length === expected && /^[0-9]+$/.test(value);
  if (!ok) {
    throw new CardholdError('cvv_invalid', {
      field,
      detail:
        expected === 'any'
          ? 'The CVV must have 3 or 4 digits'
          : `The CVV must have ${expected} digits for this card`,
    });
  }
}
