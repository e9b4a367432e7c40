export type TextEncoding = 'utf-8' | 'utf-16le' | 'utf-16be';

/** How many leading bytes `detectEncoding` looks at. */
export const encodingSampleSize = 4096;

/**
 * UTF-16 by its byte-order mark, or by the pattern ASCII text has in it: a NUL in every other byte
 * (high bytes in UTF-16LE, first bytes in UTF-16BE). Everything else is scanned as bytes, which covers
 * UTF-8, Latin-1 and binary files alike.
 */
export function detectEncoding(head: Buffer): { encoding: TextEncoding; bom: number } {
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xfe) return { encoding: 'utf-16le', bom: 2 };
  if (head.length >= 2 && head[0] === 0xfe && head[1] === 0xff) return { encoding: 'utf-16be', bom: 2 };
  const pairs = Math.floor(Math.min(head.length, encodingSampleSize) / 2);
  if (pairs < 2) return { encoding: 'utf-8', bom: 0 };
  let evenZeros = 0;
  let oddZeros = 0;
  for (let i = 0; i < pairs; i++) {
    if (head[2 * i] === 0) evenZeros++;
    if (head[2 * i + 1] === 0) oddZeros++;
  }
  if (oddZeros >= pairs * 0.4 && evenZeros <= pairs * 0.05) return { encoding: 'utf-16le', bom: 0 };
  if (evenZeros >= pairs * 0.4 && oddZeros <= pairs * 0.05) return { encoding: 'utf-16be', bom: 0 };
  return { encoding: 'utf-8', bom: 0 };
}

/**
 * Streaming UTF-16 to one byte per code unit, for the detector: a code unit below 256 becomes that byte,
 * any other becomes 0xFF (never a digit, letter or separator). A byte left over at the end of a chunk
 * waits for the next one. Columns then count UTF-16 code units.
 */
export class Utf16Narrower {
  private readonly littleEndian: boolean;
  private carry = -1;
  private out = Buffer.alloc(0);

  constructor(encoding: 'utf-16le' | 'utf-16be') {
    this.littleEndian = encoding === 'utf-16le';
  }

  /** The narrowed chunk; valid until the next call (its buffer is reused). */
  narrow(chunk: Buffer): Buffer {
    let input = chunk;
    if (this.carry >= 0) {
      input = Buffer.allocUnsafe(chunk.length + 1);
      input[0] = this.carry;
      chunk.copy(input, 1);
      this.carry = -1;
    }
    const units = input.length >> 1;
    if (input.length & 1) this.carry = input[input.length - 1] as number;
    if (this.out.length < units) this.out = Buffer.allocUnsafe(Math.max(units, 65536));
    const out = this.out;
    const lowFirst = this.littleEndian ? 0 : 1;
    for (let u = 0, p = 0; u < units; u++, p += 2) {
      const low = input[p + lowFirst] as number;
      const high = input[p + 1 - lowFirst] as number;
      out[u] = high === 0 ? low : 0xff;
    }
    return out.subarray(0, units);
  }
}
