/**
 * Card-number detection shared by the log guard, the error sanitiser and the test-artifact scan.
 * A candidate is 13–19 digits, contiguous or with up to three separators between any two of them
 * (spaces of any kind, tabs, hyphens, dots, slashes, underscores, plus signs: every way people and
 * systems write a card number), not touching other digits, that passes the Luhn check. Line breaks do
 * not join digits, nor do the hyphens of a UUID.
 */

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    const code = digits.charCodeAt(i) - 48;
    if (code < 0 || code > 9) return false;
    let d = code;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

// Separators and digits are disjoint and each gap is bounded, so matching stays linear on any input.
// Regular expression literals (not `new RegExp`): the card fields' bundle imports this module for
// luhnValid, and esbuild drops unused literals but keeps constructor calls.
const CANDIDATE = /(?<!\d)\d(?:[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000\-./_+]{0,3}\d){12,}(?!\d)/g;
const THIRTEEN_DIGITS = /\d(?:[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000\-./_+]{0,3}\d){12}/;
// An RFC 9562 UUID (8-4-4-4-12 hex, a version and the RFC variant): request, event and merchants' order
// ids. Its hyphens would join its digit groups into a 13–19 digit run that passes Luhn for about one
// random UUID in 140, so a request id, a stored answer or a merchant's metadata would pass for a card
// number. No group of a UUID holds 13 digits, and no one writes a card number in its groups: a UUID's
// digits are not a candidate, while a card number written next to one still is.
const UUID =
  /(?<![0-9A-Za-z])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[1-8][0-9A-Fa-f]{3}-[89ABab][0-9A-Fa-f]{3}-[0-9A-Fa-f]{12}(?![0-9A-Za-z])/g;

export interface PanMatch {
  index: number;
  length: number;
  digits: string;
}

/** Every digit run in `text` that is, or embeds, a Luhn-valid 13–19 digit sequence. */
export function findPans(text: string): PanMatch[] {
  const found: PanMatch[] = [];
  if (!THIRTEEN_DIGITS.test(text)) return found;
  // Same length, so indexes still point into `text`; a UUID's digits become letters and join nothing.
  const scanned = text.replace(UUID, (uuid) => uuid.replace(/\d/g, 'u'));
  for (const m of scanned.matchAll(CANDIDATE)) {
    const raw = m[0];
    const digits = raw.replace(/\D/g, '');
    if (digits.length >= 13 && digits.length <= 19 && luhnValid(digits)) {
      found.push({ index: m.index, length: raw.length, digits });
      continue;
    }
    // A PAN glued to other digits (a longer id, a prefix) is still a PAN: check every window. This errs
    // towards redacting long numbers, which is the right side to err on for logs.
    if (digits.length > 13 && embedsPan(digits)) {
      found.push({ index: m.index, length: raw.length, digits });
    }
  }
  return found;
}

function embedsPan(digits: string): boolean {
  for (let size = 13; size <= 19; size++) {
    for (let start = 0; start + size <= digits.length; start++) {
      if (luhnValid(digits.slice(start, start + size))) return true;
    }
  }
  return false;
}

export const panRedaction = '[REDACTED:PAN]';

/** Replaces every card-number candidate; fast path when the text has no 13-digit run at all. */
export function redactPans(text: string): string {
  const matches = findPans(text);
  if (matches.length === 0) return text;
  let out = '';
  let last = 0;
  for (const m of matches) {
    out += text.slice(last, m.index) + panRedaction;
    last = m.index + m.length;
  }
  return out + text.slice(last);
}

export function maskPan(digits: string): string {
  const keepStart = digits.length >= 16 ? 8 : 6;
  return (
    digits.slice(0, keepStart) + '*'.repeat(Math.max(0, digits.length - keepStart - 4)) + digits.slice(-4)
  );
}
