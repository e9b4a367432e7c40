import { Writable } from 'node:stream';
import { createLogger } from '../src/shared/logger.ts';

/** A cardhold logger whose lines are kept as written (after redaction and the card-number guard). */
export function capturedLogger(level = 'trace') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger({ level, destination }) };
}
