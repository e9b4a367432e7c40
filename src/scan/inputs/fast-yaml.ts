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
 * the values, and source positions are computed only when a finding asks for one, by parsing the file's
 * events again. It takes only plain data: a text using anchors, aliases, tags, directives, collection
 * keys, flow pairs, a byte-order mark or lone carriage returns, or one js-yaml rejects, returns undefined
 * and the caller uses the `yaml` Document path, which also words every syntax error.
 */

const { DOCUMENT, SEQUENCE, MAPPING, SCALAR, ALIAS, POP } = EVENT_ID;

export interface FastDocument {
  value: unknown;
  /** Index of the document among the text's non-empty documents. */
  index: number;
}

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
  if (text.includes('\uFEFF') || /\r(?!\n)/.test(text)) return undefined;
  try {
    const events = parseEvents(text, {});
    return isPlainData(text, events) ? events : undefined;
  } catch {
    return undefined;
  }
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
  const documents: FastDocument[] = [];
  let ordinal = 0;
  for (let at = 0; at < events.length; at++) {
    if (events[at]?.type !== DOCUMENT) continue;
    const value = values[ordinal++];
    if (!isEmptyDocument(events, at)) documents.push({ value, index: documents.length });
  }
  return documents;
}

/** Events of one text with what locating needs: subtree ends, document roots, line starts. */
class EventIndex {
  readonly events: Event[];
  /** For each event, the index of the last event of the node it opens. */
  readonly ends: Int32Array;
  /** Root event of each non-empty document. */
  readonly roots: number[] = [];
  readonly lineStarts: number[] = [0];
  readonly text: string;

  constructor(text: string, events: Event[]) {
    this.text = text;
    this.events = events;
    this.ends = new Int32Array(events.length);
    const open: number[] = [];
    for (let at = 0; at < events.length; at++) {
      const event = events[at] as Event;
      if (event.type === DOCUMENT) {
        if (!isEmptyDocument(events, at)) this.roots.push(at + 1);
        open.push(at);
      } else if (event.type === SEQUENCE || event.type === MAPPING) open.push(at);
      else if (event.type === POP) {
        const start = open.pop() ?? 0;
        this.ends[start] = at;
        this.ends[at] = at;
      } else this.ends[at] = at;
    }
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1))
      this.lineStarts.push(at + 1);
  }

  position(offset: number): Position {
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((this.lineStarts[middle] ?? 0) <= offset) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: offset - (this.lineStarts[low] ?? 0) + 1 };
  }

  /** Where `yaml` starts the node opened at `at`; undefined where this index cannot tell. */
  start(at: number): number | undefined {
    const event = this.events[at];
    if (!event) return undefined;
    if (event.type === MAPPING || event.type === SEQUENCE) return event.start;
    if (event.type !== SCALAR || event.valueStart === -1) return undefined;
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

  /** The position `yaml`'s locate gives `path` in document `index`, or undefined to defer to `yaml`. */
  locate(index: number, path: Path): Position | undefined {
    const root = this.roots[index];
    if (root === undefined) return undefined;
    let at: number = root;
    let offset = this.start(at);
    if (offset === undefined) return undefined;
    for (const segment of path) {
      const event = this.events[at] as Event;
      if (event.type === MAPPING) {
        let found = false;
        for (let key: number = at + 1; this.events[key]?.type !== POP; ) {
          const value: number = (this.ends[key] ?? key) + 1;
          const keyEvent = this.events[key] as Event;
          if (keyEvent.type === SCALAR && this.keyValue(keyEvent) === segment) {
            const keyStart = this.start(key);
            if (keyStart === undefined) return undefined;
            offset = keyStart;
            at = value;
            found = true;
            break;
          }
          key = (this.ends[value] ?? value) + 1;
        }
        if (!found) break;
      } else if (event.type === SEQUENCE && typeof segment === 'number') {
        let item: number = at + 1;
        for (let skip = 0; skip < segment && this.events[item]?.type !== POP; skip++)
          item = (this.ends[item] ?? item) + 1;
        if (this.events[item]?.type === POP || segment < 0 || !Number.isInteger(segment)) break;
        const itemStart = this.start(item);
        if (itemStart === undefined) return undefined;
        offset = itemStart;
        at = item;
      } else break;
    }
    return this.position(offset);
  }

  private keyValue(event: ScalarEvent): unknown {
    const text = getScalarValue(this.text, event);
    return event.style === SCALAR_STYLE.PLAIN ? resolvePlainScalar(text) : text;
  }
}

/**
 * Keeps the event index of the most recently located text only: the engine locates findings file by
 * file, so one entry serves every finding of a file and memory stays bounded by one file.
 */
let lastIndex: EventIndex | undefined;

/** Position of `path` in the index-th non-empty document of `text`; undefined to defer to `yaml`. */
export function locateFast(text: string, index: number, path: Path): Position | undefined {
  if (lastIndex?.text !== text) {
    const events = eventsOf(text);
    if (!events) return undefined;
    lastIndex = new EventIndex(text, events);
  }
  return lastIndex.locate(index, path);
}
