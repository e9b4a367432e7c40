import pino, { type DestinationStream, type Logger } from 'pino';
import { redactPans } from './pan-detect.ts';

export type { Logger } from 'pino';

/** Paths whose values are never logged, whatever object they sit in. */
const redactPaths = [
  'pan',
  'cvv',
  'number',
  'card',
  'password',
  'secret',
  'token_secret',
  'authorization',
  '*.pan',
  '*.cvv',
  '*.number',
  '*.card',
  '*.password',
  '*.secret',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.body',
  'headers.authorization',
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go; defaults to stdout. */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

/**
 * Structured JSON logs with two layers of protection: path redaction for known sensitive fields, and a
 * last-chance guard over every serialised line that replaces any Luhn-valid 13–19 digit run.
 * Timestamps are ISO strings so that epoch milliseconds (13 digits) are never mistaken for a PAN.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? { service: 'cardhold' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[REDACTED]' },
      hooks: { streamWrite: (line: string) => redactPans(line) },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
