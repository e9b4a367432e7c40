import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseAllDocuments,
} from 'yaml';
import type { Path, Position, SourceDocument } from '../types.ts';
import { type PositionIndex, parseFastYaml } from './fast-yaml.ts';

export interface ParsedDocument {
  value: unknown;
  source: SourceDocument;
}

export class InputError extends Error {}

/**
 * Parses every document of a YAML (or JSON, a YAML subset) text. Plain data takes the fast path
 * (fast-yaml.ts): values only, the text kept for locating; the line of a field is computed when a finding
 * asks for it. Anything else, invalid YAML included, takes the `yaml` Document path, which keeps the
 * source tree and words the error. Both give the same values and the same positions.
 */
export function parseYamlDocuments(text: string, file: string): ParsedDocument[] {
  const fast = parseFastYaml(text);
  if (!fast) return parseYamlDocumentsWithTree(text, file);
  return fast.map(({ value, index, positions }) => ({
    value,
    source: lazySource(text, file, index, positions),
  }));
}

/** The `yaml` Document path: every document composed with its source tree. */
export function parseYamlDocumentsWithTree(text: string, file: string): ParsedDocument[] {
  const lineCounter = new LineCounter();
  // Merge keys (`<<: *anchor`) as Compose and Kubernetes' YAML readers apply them: without them a
  // service that inherits its hardening from an anchor would be judged on its own few keys.
  const documents = parseAllDocuments(text, { lineCounter, uniqueKeys: false, merge: true });
  if (!Array.isArray(documents)) return [];
  const parsed: ParsedDocument[] = [];
  for (const document of documents) {
    const error = document.errors[0];
    if (error) {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      throw new InputError(`${file}:${line}:${col}: not valid YAML (${error.code})`);
    }
    if (document.contents === null) continue;
    parsed.push({
      value: document.toJS({ maxAliasCount: 1000 }),
      source: yamlSource(document, lineCounter, file),
    });
  }
  return parsed;
}

/**
 * A fast-path document: positions come from the offsets js-yaml's events gave; where those cannot tell (an
 * empty sequence item, an unusual block scalar header), from the `yaml` tree, composed for that finding.
 */
function lazySource(text: string, file: string, index: number, positions: PositionIndex): SourceDocument {
  return {
    file,
    locate(path: Path): Position {
      const fast = positions.locate(index, path);
      if (fast) return fast;
      const lineCounter = new LineCounter();
      const all = parseAllDocuments(text, { lineCounter, uniqueKeys: false });
      const documents = Array.isArray(all) ? all.filter((document) => document.contents !== null) : [];
      const document = documents[index];
      return document ? yamlSource(document, lineCounter, file).locate(path) : { line: 1, column: 1 };
    },
  };
}

function yamlSource(document: Document.Parsed, lineCounter: LineCounter, file: string): SourceDocument {
  return {
    file,
    locate(path: Path): Position {
      let node: unknown = document.contents;
      let offset = (node as Node | null)?.range?.[0] ?? 0;
      for (const segment of path) {
        if (isMap(node)) {
          const pair = node.items.find(
            (item) => isPair(item) && isScalar(item.key) && item.key.value === segment,
          );
          if (!pair) break;
          offset = (pair.key as Node).range?.[0] ?? offset;
          node = pair.value;
        } else if (isSeq(node) && typeof segment === 'number') {
          const item = node.items[segment] as Node | undefined;
          if (!item) break;
          offset = item.range?.[0] ?? offset;
          node = item;
        } else break;
      }
      const { line, col } = lineCounter.linePos(offset);
      return { line, column: col };
    },
  };
}

/** For inputs without a source tree (the live cluster): every field is reported at line 1. */
export function sourceWithoutLines(file: string): SourceDocument {
  return { file, locate: () => ({ line: 1, column: 1 }) };
}
