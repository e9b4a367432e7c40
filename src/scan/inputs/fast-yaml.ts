import {
  constructFromEvents,
  EVENT_ID,
  type Event,
  getScalarValue,
  parseEvents,
  SCALAR_STYLE,
  type ScalarEvent,
} from 'js-yaml';
import type { Path, Position } from '../types.ts';
import { resolvePlainScalar, yamlCoreSchema } from './yaml-core-schema.ts';

/**
 * The fast YAML path: js-yaml's event parser (about ten times faster than the `yaml` Document API) builds
 * the values, and keeps the events' offsets in a compact index; a line and column are computed only when
 * a finding asks for one. It takes only plain data: a text using anchors, aliases, tags, directives, collection
 * keys, flow pairs, a byte-order mark, lone carriage returns or a possible merge key (`<<`), or one js-yaml
 * rejects, returns undefined
 * and the caller uses the `yaml` Document path, which also words every syntax error.
 */

const { DOCUMENT, SEQUENCE, MAPPING, SCALAR, ALIAS, POP } = EVENT_ID;

function isPlainData(text: string, events: readonly Event[]): boolean {
  for (const event of events) {
    switch (event.type) {
      case DOCUMENT:
        if (event.directives.length > 0) return false;
        break;
      case ALIAS:
        return false;
      case MAPPING:
        // js-yaml inserts a flow mapping for a single pair inside a flow sequence ([a: b]).
        if (event.style === 2 && text[event.start] !== '{') return false;
        if (event.anchorStart !== -1 || event.tagStart !== -1) return false;
        break;
      case SEQUENCE:
      case SCALAR:
        if (event.anchorStart !== -1 || event.tagStart !== -1) return false;
        break;
    }
  }
  return true;
}

/** Whether a document is empty (`yaml` gives it null contents and the scanner skips it). */
function isEmptyDocument(events: readonly Event[], at: number): boolean {
  const content = events[at + 1];
  return content?.type === SCALAR && content.valueStart === -1 && events[at + 2]?.type === POP;
}

function eventsOf(text: string): Event[] | undefined {
  // `<<` may be a merge key, which the `yaml` path applies (Compose and Kubernetes do): leave it to it.
  if (text.includes('\uFEFF') || /\r(?!\n)/.test(text) || text.includes('<<')) return undefined;
  try {
    const events = parseEvents(text, {});
    return isPlainData(text, events) ? events : undefined;
  } catch {
    return undefined;
  }
}

/** A fast-path document: its value, and what can locate its fields without parsing the text again. */
export interface FastDocument {
  value: unknown;
  /** Index of the document among the text's non-empty documents. */
  index: number;
  positions: PositionIndex;
}

/** Values of the text's non-empty documents, or undefined when the text needs the `yaml` path. */
export function parseFastYaml(text: string): FastDocument[] | undefined {
  const events = eventsOf(text);
  if (!events) return undefined;
  let values: unknown[];
  try {
    values = constructFromEvents(events, { source: text, schema: yamlCoreSchema, json: true });
  } catch {
    return undefined;
  }
  const positions = new PositionIndex(text, events);
  const documents: FastDocument[] = [];
  let ordinal = 0;
  for (let at = 0; at < events.length; at++) {
    if (events[at]?.type !== DOCUMENT) continue;
    const value = values[ordinal++];
    if (!isEmptyDocument(events, at)) documents.push({ value, index: documents.length, positions });
  }
  return documents;
}

// Four 32-bit numbers per event: kind (type, style, chomping, fast, indent), start, value end, subtree end.
const stride = 4;

/**
 * The events of one text reduced to what locating needs, in typed arrays (16 bytes an event, a few
 * megabytes for thousands of manifests) so that no event objects or source trees outlive the parse.
 * Lines are counted only when the first finding of the text asks for one.
 */
export class PositionIndex {
  private readonly text: string;
  private readonly table: Int32Array;
  /** Root event of each non-empty document. */
  private readonly roots: number[] = [];
  private lineStarts: number[] | undefined;

  constructor(text: string, events: readonly Event[]) {
    this.text = text;
    const table = new Int32Array(events.length * stride);
    const open: number[] = [];
    for (let at = 0; at < events.length; at++) {
      const event = events[at] as Event;
      const row = at * stride;
      table[row + 3] = at;
      switch (event.type) {
        case DOCUMENT:
          if (!isEmptyDocument(events, at)) this.roots.push(at + 1);
          open.push(at);
          table[row] = DOCUMENT;
          break;
        case MAPPING:
        case SEQUENCE:
          open.push(at);
          table[row] = event.type;
          table[row + 1] = event.start;
          break;
        case SCALAR:
          table[row] =
            SCALAR |
            (event.style << 3) |
            (event.chomping << 6) |
            (event.fast ? 1 << 8 : 0) |
            ((event.indent + 1) << 9);
          table[row + 1] = event.valueStart;
          table[row + 2] = event.valueEnd;
          break;
        case POP:
          table[row] = POP;
          table[(open.pop() ?? 0) * stride + 3] = at;
          break;
        default:
          table[row] = event.type;
      }
    }
    this.table = table;
  }

  private type(at: number): number {
    return (this.table[at * stride] ?? POP) & 7;
  }

  private end(at: number): number {
    return this.table[at * stride + 3] ?? at;
  }

  private scalar(at: number): ScalarEvent {
    const row = at * stride;
    const kind = this.table[row] ?? 0;
    return {
      type: SCALAR,
      valueStart: this.table[row + 1] ?? -1,
      valueEnd: this.table[row + 2] ?? -1,
      anchorStart: -1,
      anchorEnd: -1,
      tagStart: -1,
      tagEnd: -1,
      style: ((kind >> 3) & 7) as ScalarEvent['style'],
      chomping: ((kind >> 6) & 3) as ScalarEvent['chomping'],
      fast: ((kind >> 8) & 1) === 1,
      indent: (kind >> 9) - 1,
    };
  }

  private position(offset: number): Position {
    if (!this.lineStarts) {
      this.lineStarts = [0];
      for (let at = this.text.indexOf('\n'); at !== -1; at = this.text.indexOf('\n', at + 1))
        this.lineStarts.push(at + 1);
    }
    const lineStarts = this.lineStarts;
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((lineStarts[middle] ?? 0) <= offset) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: offset - (lineStarts[low] ?? 0) + 1 };
  }

  /** Where `yaml` starts the node opened at `at`; undefined where this index cannot tell. */
  private start(at: number): number | undefined {
    const type = this.type(at);
    if (type === MAPPING || type === SEQUENCE) return this.table[at * stride + 1];
    if (type !== SCALAR) return undefined;
    const event = this.scalar(at);
    if (event.valueStart === -1) return undefined;
    if (event.style === SCALAR_STYLE.PLAIN) return event.valueStart;
    if (event.style === SCALAR_STYLE.SINGLE_QUOTED || event.style === SCALAR_STYLE.DOUBLE_QUOTED)
      return event.valueStart - 1;
    return this.blockScalarHeader(event);
  }

  /** A block scalar starts at its `|` or `>` indicator, on the line before its content. */
  private blockScalarHeader(event: ScalarEvent): number | undefined {
    const lineEnd = this.text[event.valueStart - 1] === '\n' ? event.valueStart - 1 : event.valueStart;
    const lineStart = this.text.lastIndexOf('\n', lineEnd - 1) + 1;
    const line = this.text.slice(lineStart, lineEnd);
    const lead = /^(?:[ \t]*(?:-[ \t]+)*(?:\?[ \t]+)?|---[ \t]+)(?=[|>])/.exec(line);
    return lead ? lineStart + lead[0].length : undefined;
  }

  private keyValue(at: number): unknown {
    const event = this.scalar(at);
    const text = getScalarValue(this.text, event);
    return event.style === SCALAR_STYLE.PLAIN ? resolvePlainScalar(text) : text;
  }

  /** The position `yaml`'s locate gives `path` in document `index`, or undefined to defer to `yaml`. */
  locate(index: number, path: Path): Position | undefined {
    const root = this.roots[index];
    if (root === undefined) return undefined;
    let at: number = root;
    let offset = this.start(at);
    if (offset === undefined) return undefined;
    for (const segment of path) {
      const type = this.type(at);
      if (type === MAPPING) {
        let found = false;
        for (let key = at + 1; this.type(key) !== POP; ) {
          const value = this.end(key) + 1;
          if (this.type(key) === SCALAR && this.keyValue(key) === segment) {
            const keyStart = this.start(key);
            if (keyStart === undefined) return undefined;
            offset = keyStart;
            at = value;
            found = true;
            break;
          }
          key = this.end(value) + 1;
        }
        if (!found) break;
      } else if (type === SEQUENCE && typeof segment === 'number') {
        let item = at + 1;
        for (let skip = 0; skip < segment && this.type(item) !== POP; skip++) item = this.end(item) + 1;
        if (this.type(item) === POP || segment < 0 || !Number.isInteger(segment)) break;
        const itemStart = this.start(item);
        if (itemStart === undefined) return undefined;
        offset = itemStart;
        at = item;
      } else break;
    }
    return this.position(offset);
  }
}
