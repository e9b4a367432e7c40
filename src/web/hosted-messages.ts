/**
 * The postMessage protocol between the merchant page's SDK and the hosted card fields. Nothing in it
 * can carry card data: the iframe sends the merchant only brand, completeness, error codes and, after
 * tokenization, the token's masked view and the CVV slot id.
 */
import type { CardBrand } from '../vault/card-brands.ts';
import type { FieldError } from './card-input.ts';
import type { MerchantStyle } from './merchant-style.ts';

/** Every message carries this tag, so unrelated postMessage traffic on the page is ignored. */
export const PROTOCOL = 'cardhold-fields/1';

export type FieldName = 'number' | 'expiry' | 'cvc' | 'name';

/** SDK → iframe. */
export type ParentMessage =
  | { protocol: typeof PROTOCOL; type: 'configure'; style: MerchantStyle }
  | { protocol: typeof PROTOCOL; type: 'submit'; requestId: string };

export interface FieldsState {
  brand: CardBrand;
  /** True when every field is valid. */
  complete: boolean;
  /** The error each field shows now (after the user left it or submitted), or null. */
  errors: Record<FieldName, FieldError | null>;
}

export interface TokenizedCard {
  token: {
    id: string;
    brand: string;
    last4: string;
    exp_month: number;
    exp_year: number;
  };
  cvv_slot: { id: string; expires_at: string } | null;
}

/** iframe → SDK. */
export type FrameMessage =
  | { protocol: typeof PROTOCOL; type: 'ready' }
  | { protocol: typeof PROTOCOL; type: 'change'; state: FieldsState }
  | { protocol: typeof PROTOCOL; type: 'result'; requestId: string; ok: true; card: TokenizedCard }
  | {
      protocol: typeof PROTOCOL;
      type: 'result';
      requestId: string;
      ok: false;
      error: { code: string; message: string };
    };

const REQUEST_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Shape checks for what arrives over postMessage: anything else is dropped. */
export function isParentMessage(data: unknown): data is ParentMessage {
  if (typeof data !== 'object' || data === null) return false;
  const m = data as Record<string, unknown>;
  if (m['protocol'] !== PROTOCOL) return false;
  if (m['type'] === 'submit') return typeof m['requestId'] === 'string' && REQUEST_ID.test(m['requestId']);
  return m['type'] === 'configure' && typeof m['style'] === 'object' && m['style'] !== null;
}

export function isFrameMessage(data: unknown): data is FrameMessage {
  if (typeof data !== 'object' || data === null) return false;
  const m = data as Record<string, unknown>;
  return m['protocol'] === PROTOCOL && ['ready', 'change', 'result'].includes(String(m['type']));
}
