/**
 * Masking for everything discovery prints. A card number shows at most its first six and last four
 * digits (PCI DSS 3.4.1), and never fewer than six hidden digits, so a short PAN is not all but shown.
 */
export function maskDigits(digits: string): string {
  const keepEnd = Math.min(4, digits.length);
  const keepStart = Math.max(0, Math.min(6, digits.length - keepEnd - 6));
  return (
    digits.slice(0, keepStart) +
    '*'.repeat(digits.length - keepStart - keepEnd) +
    digits.slice(digits.length - keepEnd)
  );
}

// 12 or more digits, possibly joined by single spaces or hyphens: the shortest card number is 12 digits.
const LONG_DIGIT_RUN = /\d(?:[ -]?\d){11,}/g;

/**
 * Masks every run of 12 or more digits in a string that is not itself a finding: file and archive member
 * names, database row keys, Redis keys, error messages, every output line. It masks without asking
 * whether the run is a card number, erring on the side of hiding.
 */
export function redactDigitRuns(text: string): string {
  if (!/\d{4}/.test(text)) return text;
  return text.replace(LONG_DIGIT_RUN, (run) => maskDigits(run.replace(/[ -]/g, '')));
}

/** An error's code and message with every long digit run masked (a message can quote a path or a value). */
export function readError(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return redactDigitRuns(typeof e?.code === 'string' ? `${e.code}: ${message}` : message);
}
