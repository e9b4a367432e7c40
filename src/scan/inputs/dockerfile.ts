import type { Position, SourceDocument } from '../types.ts';

/** One Dockerfile instruction, with continuation lines joined and the line it starts on. */
export interface Instruction {
  keyword: string;
  arguments: string;
  line: number;
  /** Index of the build stage (FROM) the instruction belongs to. */
  stage: number;
}

export interface DockerfileModel {
  file: string;
  source: SourceDocument;
  instructions: Instruction[];
  /** Comment lines (without the `#`), by line number, for inline waivers. */
  comments: Map<number, string>;
  stageCount: number;
}

/**
 * A line-oriented Dockerfile reader: enough for lint rules (instructions, stages, continuation lines,
 * heredocs skipped as bodies), not a full BuildKit front end.
 */
export function parseDockerfile(text: string, file: string): DockerfileModel {
  const lines = text.split(/\r?\n/);
  const instructions: Instruction[] = [];
  const comments = new Map<number, string>();
  let escapeChar = '\\';
  let stage = -1;
  let sawInstruction = false;
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index] ?? '';
    const trimmed = raw.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('#')) {
      const directive = /^#\s*escape\s*=\s*(\S)/i.exec(trimmed);
      if (directive && !sawInstruction) escapeChar = directive[1] ?? escapeChar;
      comments.set(index + 1, trimmed.slice(1).trim());
      continue;
    }
    sawInstruction = true;
    const startLine = index + 1;
    let body = trimmed;
    while (body.endsWith(escapeChar) && index + 1 < lines.length) {
      body = body.slice(0, -1);
      index++;
      const next = (lines[index] ?? '').trim();
      if (next.startsWith('#')) continue;
      body += ` ${next}`;
    }
    const heredoc = /<<-?\s*["']?(\w+)["']?/.exec(body);
    if (heredoc) {
      const terminator = heredoc[1];
      while (index + 1 < lines.length && (lines[index + 1] ?? '').trim() !== terminator) index++;
      index++;
    }
    const match = /^(\S+)\s*(.*)$/.exec(body);
    if (!match) continue;
    const keyword = (match[1] ?? '').toUpperCase();
    if (keyword === 'FROM') stage++;
    instructions.push({
      keyword,
      arguments: (match[2] ?? '').trim(),
      line: startLine,
      stage: Math.max(stage, 0),
    });
  }
  const source: SourceDocument = { file, locate: (): Position => ({ line: 1, column: 1 }) };
  return { file, source, instructions, comments, stageCount: Math.max(stage + 1, 0) };
}
