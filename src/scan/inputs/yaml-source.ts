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

export interface ParsedDocument {
  value: unknown;
  source: SourceDocument;
}

export class InputError extends Error {}

/**
 * Parses every document of a YAML (or JSON, a YAML subset) text, keeping the source tree so that a
 * finding can name the line of the field at fault. Lines are looked up only when a finding needs one.
 */
export function parseYamlDocuments(text: string, file: string): ParsedDocument[] {
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
