import { type CardMatch, canStartCardNumber, matchCard, maxPanLength, minPanLength } from './card-match.ts';
import { type Confidence, confidenceOf } from './confidence.ts';

/** A card number found in a byte stream: masked, with its 1-based line and column. */
export interface Detection extends CardMatch {
  line: number;
  column: number;
  confidence: Confidence;
  /** Written with spaces or hyphens between digit groups. */
  separated: boolean;
  /** Some digits were JSON `\u003X` escapes. */
  escaped: boolean;
}

// Byte classes. The idle loop stops only at a digit or a backslash (a possible JSON escape).
const DIGIT = 1;
const BACKSLASH = 2;
const startClass = new Uint8Array(256);
for (let c = 48; c <= 57; c++) startClass[c] = DIGIT;
startClass[92] = BACKSLASH;
/** Letters, digits and underscore: a number touching one is part of an identifier, not a card number. */
const glue = new Uint8Array(256);
for (let c = 48; c <= 57; c++) glue[c] = 1;
for (let c = 65; c <= 90; c++) glue[c] = 1;
for (let c = 97; c <= 122; c++) glue[c] = 1;
glue[95] = 1;

// Local copies: the hot loop reads them on every number.
const MIN_DIGITS = minPanLength;
const MAX_DIGITS = maxPanLength;
const UNKNOWN = -1;
const IDLE = 0;
const DIGITS = 1; // the last thing was a digit
const SEPARATOR = 2; // the last thing was a single space or hyphen after a digit
const DOT = 3; // the run was followed by '.', which makes it a decimal if a digit comes next

const SPACE = 32;
const HYPHEN = 45;
const PERIOD = 46;
const NEWLINE = 10;
const OTHER = 0xff; // stands for a character outside ASCII (never a digit, letter or separator)

/** Digits kept per run: more than any card window needs; longer runs are ids, hashes or noise. */
const MAX_RUN_DIGITS = 64;
const MAX_GROUPS = 32;
const TAIL = 1024;
/**
 * The fast scan searches a chunk through one-byte strings of this many bytes: such a string comes from
 * V8's young generation, where one of a whole 1 MiB chunk would be a freshly mapped external string each
 * time, whose page faults cost more than the search.
 */
const WINDOW = 64 * 1024;
/** The most bytes the first 12 digits of a span can take: 12 digits and 11 separators. */
const SPAN_REACH = 2 * MIN_DIGITS - 1;
/**
 * The fast scan gives a chunk over to the byte loop once it has stopped more than once per this many
 * bytes on average (after DENSE_SLACK bytes' grace): JSON with escapes everywhere, rows of numbers.
 * Both scans stop at the same places, so where a chunk changes over does not change what is found.
 */
const DENSE_STOP_SPACING = 64;
const DENSE_SLACK = 4096;
const CONTEXT_BEFORE = 48;
const CONTEXT_AFTER = 32;
const isDigitByte = (c: number) => c >= 48 && c <= 57;
const emptyWords = new Uint32Array(0);

/** The run's left neighbours make it part of an identifier or a decimal. */
const gluedOnTheLeft = (before: number, twoBefore: number) =>
  glue[before] === 1 ||
  (before === HYPHEN && glue[twoBefore] === 1) ||
  (before === PERIOD && isDigitByte(twoBefore));

/** Whether the byte at `j` could still join the span before it: an escape, or a separator at the chunk end. */
const pendingAt = (buf: Buffer, j: number, n: number) => {
  const c = buf[j] as number;
  return c === 92 || (j + 1 === n && (c === SPACE || c === HYPHEN));
};

/**
 * The index of the next digit or backslash at or after `i`, else `n`. Four bytes at a time where the
 * chunk is aligned: a word is looked at byte by byte only when it holds a byte in 0x30–0x39 or a 0x5C
 * (the "has byte between" and "has zero byte" tricks on 32-bit words).
 */
function nextDigitOrBackslash(buf: Buffer, words: Uint32Array, lead: number, i: number, n: number): number {
  while (i < n && (i < lead || ((i - lead) & 3) !== 0)) {
    if (startClass[buf[i] as number] !== 0) return i;
    i++;
  }
  let w = (i - lead) >> 2;
  const wordsEnd = words.length;
  while (w < wordsEnd) {
    const x = words[w] as number;
    const low = x & 0x7f7f7f7f;
    const digit = (0xb9b9b9b9 - low) & ~x & (low + 0x50505050);
    const v = x ^ 0x5c5c5c5c;
    const backslash = (v - 0x01010101) & ~v;
    if (((digit | backslash) & 0x80808080) !== 0) {
      const at = lead + w * 4;
      for (let k = at; k < at + 4; k++) if (startClass[buf[k] as number] !== 0) return k;
    }
    w++;
  }
  i = Math.max(i, lead + wordsEnd * 4);
  while (i < n) {
    if (startClass[buf[i] as number] !== 0) return i;
    i++;
  }
  return n;
}

/**
 * A span of 12 or more digits joined by single spaces or hyphens, `[0-9](?:[ -]?[0-9]){11,}`: the only
 * kind of digit span the idle scan has to stop at (see `CardNumberDetector.nextStop`). Irregexp runs it
 * as native code over a one-byte string of the chunk. Written out digit by digit, the pattern's fixed
 * prefix lets Irregexp skip ahead several characters at a time (its Boyer-Moore look-ahead); that form
 * measured about five times faster than the `{11,}` one on digit-dense logs.
 */
const longSpan = new RegExp(`[0-9]${'[ -]?[0-9]'.repeat(MIN_DIGITS - 1)}(?:[ -]?[0-9])*`, 'g');

/**
 * Where the span of digits and single separators that ends just before `end` begins, going back no
 * further than `from`: the first digit the byte-by-byte idle scan starting at `from` would stop at.
 */
function spanStart(buf: Buffer, from: number, end: number): number {
  let s = end;
  for (let k = end - 1; k >= from; k--) {
    const c = buf[k] as number;
    if (c >= 48 && c <= 57) s = k;
    else if (!((c === SPACE || c === HYPHEN) && k - 1 >= from && isDigitByte(buf[k - 1] as number))) break;
  }
  return s;
}

const hexValue = (c: number) =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;

/**
 * How the detector crosses text between numbers. `fast` (the default) jumps from stop to stop with
 * native searches: `Buffer.indexOf` for backslashes and a regular expression for spans of 12 or more
 * digits. `exact` looks at every byte in JavaScript (four at a time); it is the reference the fast path
 * is tested against, and both give the same detections on any input.
 */
export type IdleScan = 'fast' | 'exact';

/**
 * Streaming card-number detector over bytes (ASCII-compatible text: UTF-8, Latin-1, or UTF-16 already
 * narrowed by `Utf16Narrower`). It crosses the text between numbers with native searches (see
 * `IdleScan`), collects runs of digits joined by single spaces or hyphens where it stops, and looks at a
 * run only once it ends with at least 12 digits. Everything
 * it needs across chunk boundaries (the current run, a half-read escape, line numbers, the last bytes for
 * context) is its own state, so a number split between two chunks is found like any other.
 *
 * Word boundaries: a run touching a letter, digit or underscore, joined to one by a hyphen
 * (`ORD-2024-…`), or part of a decimal (`0.4242…`, `4242….5`) is not a card number as a whole. Within a
 * longer run, a window of whole groups delimited by spaces is also tried when it is one group of 12–19
 * digits or is 14+ digits grouped like a card (4-4-4-4[-1..3], 4-6-5, 4-6-4): `4111 1111 1111 1111 12/27`.
 */
export class CardNumberDetector {
  private readonly emit: (detection: Detection) => void;
  private readonly fast: boolean;
  // Fast idle scan, per chunk: a window of the chunk as a one-byte string, and the next stops found.
  private text = '';
  private textStart = 0; // the window is the chunk's bytes [textStart, textEnd)
  private textEnd = 0;
  private backslashAt = -1; // the next backslash at or after where it was searched from (n: none)
  private spanAt = -1; // the first digit of the next span of 12+ digits (n: none)
  private stops = 0; // stops the fast scan made in this chunk
  private byteScan = false; // the byte loop scans (the rest of) this chunk
  // Position.
  private abs = 0; // absolute offset of the current chunk's first byte
  private chunk: Buffer = Buffer.alloc(0);
  private line = 1;
  private lineStart = 0; // absolute offset of the current line's first byte (as far as counted)
  private counted = 0; // newlines are counted up to this absolute offset
  private readonly tail = Buffer.alloc(TAIL); // the bytes just before the current chunk
  private tailLength = 0;
  // Current run.
  private state = IDLE;
  private readonly digits = new Uint8Array(MAX_RUN_DIGITS);
  private count = 0;
  private overflow = false;
  private readonly groupStart = new Uint8Array(MAX_GROUPS + 1); // digit index where each group starts
  private readonly groupOffset = new Float64Array(MAX_GROUPS); // absolute offset of each group's first digit
  private readonly groupSeparator = new Uint8Array(MAX_GROUPS); // the separator before each group
  private groups = 0;
  private gluedBefore = UNKNOWN; // 0, 1, or not yet decided
  private escapeBeforeRun = -1; // what an escape just before the run stood for, if one was there
  private separatorByte = 0;
  private escapedDigits = false;
  private runEnd = 0; // absolute offset just after the last digit
  // JSON escape `\u00XY` being read: how many bytes of it so far (0 = none), where it began, its value.
  private escape = 0;
  private escapeStart = 0;
  private escapeValue = 0;
  private lastEscapeEnd = -1; // absolute offset just after the last escape, and what it stood for
  private lastEscapeByte = 0;

  constructor(emit: (detection: Detection) => void, idleScan: IdleScan = 'fast') {
    this.emit = emit;
    this.fast = idleScan === 'fast';
  }

  push(buf: Buffer): void {
    this.chunk = buf;
    const n = buf.length;
    const base = this.abs;
    // A 32-bit view of the aligned middle of the chunk, for the word-at-a-time skip.
    const lead = (4 - (buf.byteOffset & 3)) & 3;
    const words =
      n > lead + 4 ? new Uint32Array(buf.buffer, buf.byteOffset + lead, (n - lead) >> 2) : emptyWords;
    this.byteScan = !this.fast;
    if (this.fast) {
      this.stops = 0;
      this.textStart = 0;
      this.textEnd = 0;
      this.backslashAt = -1;
      this.spanAt = -1;
    }
    let i = 0;
    while (i < n) {
      if (this.escape !== 0) {
        this.continueEscape(buf[i] as number, base + i);
        i++;
        continue;
      }
      if (this.state === IDLE) {
        // The hot path: most bytes are neither digits nor backslashes.
        if (this.byteScan) i = nextDigitOrBackslash(buf, words, lead, i, n);
        else {
          i = this.nextStop(buf, i, n);
          // Where stops come thick (escapes everywhere, rows of numbers), a call into native code per
          // stop costs more than the byte loop: the rest of the chunk takes the byte loop.
          if (++this.stops * DENSE_STOP_SPACING > i + DENSE_SLACK) this.byteScan = true;
        }
        if (i === n) break;
        const c = buf[i] as number;
        if (c === 92) {
          this.beginEscape(base + i);
          i++;
          continue;
        }
        // Look ahead over digits and single separators without touching any state: a span of fewer
        // than 12 digits that ends inside this chunk, not at an escape, cannot hold a card number.
        let j = i;
        let count = 0;
        let separators = 0;
        while (j < n) {
          const d = buf[j] as number;
          if (d >= 48 && d <= 57) count++;
          else if ((d === SPACE || d === HYPHEN) && j + 1 < n && isDigitByte(buf[j + 1] as number))
            separators++;
          else break;
          j++;
        }
        // A contiguous number is one window: it matters only at 12–19 digits starting like a card.
        const hopeless =
          count < MIN_DIGITS ||
          (separators === 0 &&
            (count > MAX_DIGITS ||
              !canStartCardNumber[c - 48] ||
              (j < n && glue[buf[j] as number] === 1) ||
              (i >= 2 &&
                base + i !== this.lastEscapeEnd &&
                gluedOnTheLeft(buf[i - 1] as number, buf[i - 2] as number))));
        if (hopeless && j < n && !pendingAt(buf, j, n)) {
          i = j;
          continue;
        }
        this.startRun(base + i, c - 48);
        for (let k = i + 1; k < j; k++) {
          const d = buf[k] as number;
          if (d >= 48 && d <= 57) this.addDigit(d - 48);
          else this.newGroup(base + k + 1, d);
        }
        this.runEnd = base + j;
        i = j;
        continue;
      }
      const c = buf[i] as number;
      if (c === 92) this.beginEscape(base + i);
      else this.step(c, base + i, base + i + 1);
      i++;
    }
    this.countLinesTo(base + n);
    this.keepTail(buf);
    this.abs = base + n;
    this.text = '';
  }

  /**
   * The fast idle scan: from `i`, the next byte where the byte-by-byte scan would do more than skip,
   * else `n`. That scan stops at every backslash and at the first digit of every span, and goes straight
   * past a span unless it holds 12 or more digits, ends at a backslash (an escaped digit may continue
   * it) or reaches the chunk's end (the next chunk may continue it). So the stops are: the next span of
   * 12+ digits (the regular expression), the next backslash (`indexOf`) or the span just before it, and
   * the span at the chunk's end. The look-ahead in `push` then decides each as before.
   */
  private nextStop(buf: Buffer, i: number, n: number): number {
    if (this.backslashAt < i) {
      const b = buf.indexOf(92, i);
      this.backslashAt = b < 0 ? n : b;
    }
    // A cached match is still the first one at or after `i`: no match began between its search and it.
    if (this.spanAt < i) this.spanAt = this.nextLongSpan(buf, i, n);
    const b = this.backslashAt;
    if (b < this.spanAt) return b > i && isDigitByte(buf[b - 1] as number) ? spanStart(buf, i, b) : b;
    if (this.spanAt < n) return this.spanAt;
    // No stop before the end: a span that reaches it (perhaps through a final separator) may go on.
    const end = n > i && (buf[n - 1] === SPACE || buf[n - 1] === HYPHEN) ? n - 1 : n;
    return end > i && isDigitByte(buf[end - 1] as number) ? spanStart(buf, i, end) : n;
  }

  /**
   * The first digit of the next span of 12+ digits at or after `i`, else `n`, searched window by window.
   * A match inside a window is a real one (a span cut by the window's end was still matched on 12
   * digits). No match means no such span starts more than SPAN_REACH bytes before the window's end, so
   * the next window starts there; a span that began earlier with fewer than 12 digits in it cannot be
   * matched from the middle then either.
   */
  private nextLongSpan(buf: Buffer, i: number, n: number): number {
    let from = i;
    if (from < this.textStart || (this.textEnd < n && from + SPAN_REACH > this.textEnd))
      this.window(buf, from, n);
    for (;;) {
      longSpan.lastIndex = from - this.textStart;
      if (longSpan.test(this.text)) return spanStart(buf, i, this.textStart + longSpan.lastIndex);
      if (this.textEnd === n) return n;
      from = this.textEnd - SPAN_REACH + 1;
      this.window(buf, from, n);
    }
  }

  private window(buf: Buffer, from: number, n: number): void {
    this.textStart = from;
    this.textEnd = Math.min(n, from + WINDOW);
    this.text = buf.toString('latin1', from, this.textEnd);
  }

  /** End of input: a pending run ends here, at a clean boundary. */
  end(): void {
    if (this.escape !== 0) {
      this.escape = 0;
      this.step(OTHER, this.escapeStart, this.abs);
    }
    if (this.state !== IDLE) this.finish(false);
    this.chunk = Buffer.alloc(0);
  }

  /** Feeds one logical character (a raw byte, or what an escape stood for) at `at`, ending at `next`. */
  private step(c: number, at: number, next: number): void {
    const isDigit = c >= 48 && c <= 57;
    switch (this.state) {
      case IDLE:
        if (isDigit) {
          this.startRun(at, c - 48);
          this.runEnd = next;
        }
        return;
      case DIGITS:
        if (isDigit) {
          this.addDigit(c - 48);
          this.runEnd = next;
        } else if (c === SPACE || c === HYPHEN) {
          this.state = SEPARATOR;
          this.separatorByte = c;
        } else if (c === PERIOD) {
          this.state = DOT;
        } else {
          this.finish(glue[c] === 1);
        }
        return;
      case SEPARATOR:
        if (isDigit) {
          this.newGroup(at, this.separatorByte);
          this.addDigit(c - 48);
          this.runEnd = next;
        } else {
          this.finish(this.separatorByte === HYPHEN && glue[c] === 1);
        }
        return;
      case DOT:
        if (isDigit) {
          // A decimal: neither the integer part nor the fraction is a card number.
          this.finish(true);
          this.startRun(at, c - 48);
          this.gluedBefore = 1;
          this.runEnd = next;
        } else {
          this.finish(false);
        }
        return;
    }
  }

  private beginEscape(at: number): void {
    this.escape = 1;
    this.escapeStart = at;
    this.escapeValue = 0;
  }

  /** `\u00XY` → the byte 0xXY; any other escape (`\n`, `\"`, `\u20ac`) stands for a non-digit. */
  private continueEscape(c: number, at: number): void {
    const e = this.escape;
    let done = -1;
    if (e === 1) {
      if (c === 117) this.escape = 2;
      else done = c === 47 ? 47 : OTHER; // `\/` is a slash; the others are quotes and control characters
    } else if (e === 2 || e === 3) {
      if (c === 48) this.escape = e + 1;
      else done = OTHER;
    } else {
      const h = hexValue(c);
      if (h < 0) done = OTHER;
      else if (e === 4) {
        this.escapeValue = h;
        this.escape = 5;
      } else done = this.escapeValue * 16 + h;
    }
    if (done >= 0) {
      this.escape = 0;
      this.step(done, this.escapeStart, at + 1);
      if (done >= 48 && done <= 57) this.escapedDigits = true;
      // Set after the step, so that a run starting at this escape still sees the character before it.
      this.lastEscapeEnd = at + 1;
      this.lastEscapeByte = done;
    }
  }

  private startRun(at: number, digit: number): void {
    this.state = DIGITS;
    this.count = 1;
    this.overflow = false;
    this.digits[0] = digit;
    this.groups = 1;
    this.groupStart[0] = 0;
    this.groupOffset[0] = at;
    this.groupSeparator[0] = 0;
    this.escapedDigits = false;
    // Decided when the run ends, and only if it is long enough to matter (the tail keeps the bytes).
    this.gluedBefore = UNKNOWN;
    this.escapeBeforeRun = at === this.lastEscapeEnd ? this.lastEscapeByte : -1;
  }

  /** Glued to a letter, digit or underscore; to one through a hyphen; or the fraction of a decimal. */
  private runGluedBefore(): boolean {
    if (this.gluedBefore !== UNKNOWN) return this.gluedBefore === 1;
    const at = this.groupOffset[0] as number;
    const before = this.escapeBeforeRun >= 0 ? this.escapeBeforeRun : this.byteBefore(at);
    return gluedOnTheLeft(before, this.byteBefore(at - 1));
  }

  private addDigit(digit: number): void {
    this.state = DIGITS;
    if (this.count < MAX_RUN_DIGITS) this.digits[this.count] = digit;
    else this.overflow = true;
    this.count++;
  }

  private newGroup(at: number, separator: number): void {
    if (this.groups === MAX_GROUPS) {
      this.overflow = true;
      return;
    }
    this.groupStart[this.groups] = Math.min(this.count, MAX_RUN_DIGITS);
    this.groupOffset[this.groups] = at;
    this.groupSeparator[this.groups] = separator;
    this.groups++;
  }

  /** The logical character just before absolute offset `at` (OTHER at the start of input). */
  private byteBefore(at: number): number {
    if (at === this.lastEscapeEnd) return this.lastEscapeByte;
    const c = this.rawByte(at - 1);
    return c < 0 ? OTHER : c;
  }

  /** The byte at absolute offset `p` if it is still in the chunk or the tail, else −1. */
  private rawByte(p: number): number {
    if (p < 0) return -1;
    if (p >= this.abs) return p - this.abs < this.chunk.length ? (this.chunk[p - this.abs] as number) : -1;
    const t = p - (this.abs - this.tailLength);
    return t >= 0 ? (this.tail[t] as number) : -1;
  }

  /** The run has ended; `gluedAfter` says whether it touches an identifier on the right. */
  private finish(gluedAfter: boolean): void {
    this.state = IDLE;
    if (this.count < MIN_DIGITS || this.overflow) return;
    this.groupStart[this.groups] = this.count;
    const groups = this.groups;
    const gluedBefore = this.runGluedBefore();
    if (!gluedBefore && !gluedAfter && this.count <= MAX_DIGITS) {
      if (this.tryWindow(0, groups - 1, groups > 1)) return;
    }
    if (groups === 1) return;
    // Windows of whole space-delimited groups inside a longer or failing run.
    let k = 0;
    while (k < groups) {
      const leftClean = k === 0 ? !gluedBefore : this.groupSeparator[k] === SPACE;
      let found = -1;
      if (leftClean) {
        for (let j = groups - 1; j >= k; j--) {
          if (k === 0 && j === groups - 1) continue;
          const rightClean = j === groups - 1 ? !gluedAfter : this.groupSeparator[j + 1] === SPACE;
          if (!rightClean) continue;
          const length = (this.groupStart[j + 1] as number) - (this.groupStart[k] as number);
          if (length < MIN_DIGITS || length > MAX_DIGITS) continue;
          // Several groups only when grouped like a card and 14+ digits: a 12-digit prefix of a longer
          // grouped number is more likely a coincidence than a Maestro card.
          if (j !== k && (length < 14 || !this.cardGrouped(k, j))) continue;
          if (this.tryWindow(k, j, j !== k)) {
            found = j;
            break;
          }
        }
      }
      k = found >= 0 ? found + 1 : k + 1;
    }
  }

  /** 4-4-4-4 with a last group of 1–4 (13 to 19 digits), or Amex/Diners' 4-6-5 and 4-6-4. */
  private cardGrouped(k: number, j: number): boolean {
    const size = (g: number) => (this.groupStart[g + 1] as number) - (this.groupStart[g] as number);
    if (j - k === 2 && size(k) === 4 && size(k + 1) === 6 && (size(j) === 5 || size(j) === 4)) return true;
    for (let g = k; g < j; g++) if (size(g) !== 4) return false;
    return size(j) >= 1 && size(j) <= 4;
  }

  private tryWindow(k: number, j: number, grouped: boolean): boolean {
    const from = this.groupStart[k] as number;
    const to = this.groupStart[j + 1] as number;
    // Most long numbers (epoch milliseconds, ids) start where no card brand does.
    if (!canStartCardNumber[this.digits[from] as number]) return false;
    let digits = '';
    for (let d = from; d < to; d++) digits += String.fromCharCode(48 + (this.digits[d] as number));
    const match = matchCard(digits);
    if (!match) return false;
    const at = this.groupOffset[k] as number;
    const end = j === this.groups - 1 ? this.runEnd : (this.groupOffset[j + 1] as number) - 1;
    const nearby = this.nearbyText(at, end);
    this.countLinesTo(at);
    this.emit({
      ...match,
      line: this.line,
      column: at - this.lineStart + 1,
      confidence: confidenceOf(match, nearby, grouped && this.cardGrouped(k, j)),
      separated: k !== j,
      escaped: this.escapedDigits,
    });
    return true;
  }

  /** The same line's text around [at, end): where a context keyword would be. */
  private nearbyText(at: number, end: number): string {
    let text = '';
    for (let p = at - 1; p >= at - CONTEXT_BEFORE; p--) {
      const c = this.rawByte(p);
      if (c < 0 || c === NEWLINE) break;
      text = String.fromCharCode(c) + text;
    }
    text += ' ';
    for (let p = end; p < end + CONTEXT_AFTER; p++) {
      const c = this.rawByte(p);
      if (c < 0 || c === NEWLINE) break;
      text += String.fromCharCode(c);
    }
    return text;
  }

  /** Counts newlines up to absolute offset `to` in the current chunk (runs never contain one). */
  private countLinesTo(to: number): void {
    if (to <= this.counted) return;
    const buf = this.chunk;
    let p = Math.max(this.counted, this.abs) - this.abs;
    const limit = to - this.abs;
    for (;;) {
      const nl = buf.indexOf(NEWLINE, p);
      if (nl < 0 || nl >= limit) break;
      this.line++;
      this.lineStart = this.abs + nl + 1;
      p = nl + 1;
    }
    this.counted = to;
  }

  private keepTail(buf: Buffer): void {
    if (buf.length >= TAIL) {
      buf.copy(this.tail, 0, buf.length - TAIL);
      this.tailLength = TAIL;
      return;
    }
    const keep = Math.min(this.tailLength, TAIL - buf.length);
    this.tail.copy(this.tail, 0, this.tailLength - keep, this.tailLength);
    buf.copy(this.tail, keep);
    this.tailLength = keep + buf.length;
  }
}
