import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { InputError } from './inputs/yaml-source.ts';
import { lazyValidator } from './lazy-validator.ts';
import type { Resource } from './model.ts';
import type { Finding } from './types.ts';

/**
 * Accepted findings. Inline waivers live beside the object (annotation `cardhold.dev/waive: RULE=reason`, or
 * a `# cardhold:waive RULE=reason` comment in Dockerfiles and Compose files); the waiver file adds an owner and
 * an expiry. An expired waiver waives nothing and fails the scan; a waiver that matched nothing is reported.
 */
export const waiveAnnotation = 'cardhold.dev/waive';
const commentPattern = /#\s*cardhold:waive\s+([\w.-]+)\s*=\s*(.+)$/;

export interface WaiverFileEntry {
  rule: string;
  selector: { kind?: string; namespace?: string; name?: string; container?: string; file?: string };
  owner: string;
  reason: string;
  expires: string;
}

export interface WaiverOutcome {
  findings: Finding[];
  expired: WaiverFileEntry[];
  unused: WaiverFileEntry[];
}

const schema = {
  type: 'object',
  required: ['waivers'],
  additionalProperties: false,
  properties: {
    waivers: {
      type: 'array',
      items: {
        type: 'object',
        required: ['rule', 'owner', 'reason', 'expires'],
        additionalProperties: false,
        properties: {
          rule: { type: 'string', minLength: 1 },
          selector: {
            type: 'object',
            additionalProperties: false,
            properties: {
              kind: { type: 'string' },
              namespace: { type: 'string' },
              name: { type: 'string' },
              container: { type: 'string' },
              file: { type: 'string' },
            },
          },
          owner: { type: 'string', minLength: 1 },
          reason: { type: 'string', minLength: 1 },
          expires: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
        },
      },
    },
  },
} as const;
const validator = lazyValidator(schema, { allErrors: false });

export function waiverFileFrom(value: unknown, origin: string): WaiverFileEntry[] {
  const validate = validator();
  if (!validate(value)) {
    const error = validate.errors?.[0];
    throw new InputError(`${origin}: ${error?.instancePath || '/'} ${error?.message ?? 'is not valid'}`);
  }
  return (value as { waivers: WaiverFileEntry[] }).waivers.map((entry) => ({
    ...entry,
    selector: entry.selector ?? {},
  }));
}

export async function loadWaiverFile(file: string): Promise<WaiverFileEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new InputError(`${file}: cannot read the waiver file`);
  }
  try {
    return waiverFileFrom(parse(text), file);
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`${file}: the waiver file is not valid YAML or JSON`);
  }
}

interface CommentWaiver {
  rule: string;
  reason: string;
  /** Lines whose findings it covers; undefined = the whole file. */
  lines?: Set<number>;
  /** Compose service it covers, when the comment sits on the service's key. */
  service?: string;
}

/** Parses `# cardhold:waive` comments: each covers its own line and the next content line. */
export function commentWaivers(text: string): CommentWaiver[] {
  const lines = text.split(/\r?\n/);
  const waivers: CommentWaiver[] = [];
  let seenContent = false;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? '';
    const match = commentPattern.exec(line);
    const isComment = line.trim().startsWith('#');
    if (!match) {
      if (line.trim() !== '' && !isComment) seenContent = true;
      continue;
    }
    let next = index + 1;
    while (
      next < lines.length &&
      ((lines[next] ?? '').trim() === '' || (lines[next] ?? '').trim().startsWith('#'))
    )
      next++;
    const waiver: CommentWaiver = { rule: match[1] ?? '', reason: (match[2] ?? '').trim() };
    const nextLine = lines[next] ?? '';
    const serviceKey = /^\s{2,4}([\w.-]+):\s*$/.exec(nextLine);
    if (!seenContent && isComment && /^FROM\s/i.test(nextLine.trim())) {
      // A header comment above the first FROM: the whole Dockerfile.
    } else {
      waiver.lines = new Set([index + 1, next + 1]);
      if (serviceKey) waiver.service = serviceKey[1];
    }
    waivers.push(waiver);
  }
  return waivers;
}

export function annotationWaivers(
  resource: Resource,
  extra: Record<string, string> = {},
): Map<string, string> {
  const out = new Map<string, string>();
  for (const value of [resource.annotations[waiveAnnotation], extra[waiveAnnotation]]) {
    if (!value) continue;
    for (const entry of value.split(/[;\n]/)) {
      const at = entry.indexOf('=');
      if (at > 0) out.set(entry.slice(0, at).trim(), entry.slice(at + 1).trim());
    }
  }
  return out;
}

export interface InlineWaivers {
  /** `file|kind|namespace|name` → rule → reason. */
  byObject: Map<string, Map<string, string>>;
  byFile: Map<string, CommentWaiver[]>;
}

export function objectKey(file: string, kind: string, namespace: string | undefined, name: string): string {
  return `${file}|${kind}|${namespace ?? ''}|${name}`;
}

function selectorMatches(entry: WaiverFileEntry, finding: Finding): boolean {
  const { selector } = entry;
  const object = finding.object;
  if (selector.kind !== undefined && selector.kind !== object?.kind) return false;
  if (selector.namespace !== undefined && selector.namespace !== object?.namespace) return false;
  if (selector.name !== undefined && selector.name !== object?.name) return false;
  if (selector.container !== undefined && selector.container !== object?.container) return false;
  if (
    selector.file !== undefined &&
    !(finding.file === selector.file || path.matchesGlob(finding.file, selector.file))
  )
    return false;
  return true;
}

export function applyWaivers(
  findings: Finding[],
  inline: InlineWaivers,
  fileEntries: WaiverFileEntry[],
  today: string,
): WaiverOutcome {
  const expired = fileEntries.filter((entry) => entry.expires < today);
  const active = fileEntries.filter((entry) => entry.expires >= today);
  const used = new Set<WaiverFileEntry>();
  const out = findings.map((finding) => {
    const object = finding.object;
    const byObject =
      object &&
      inline.byObject
        .get(objectKey(finding.file, object.kind, object.namespace, object.name))
        ?.get(finding.ruleId);
    if (byObject !== undefined)
      return { ...finding, waiver: { source: 'inline' as const, reason: byObject } };
    const comment = inline.byFile
      .get(finding.file)
      ?.find(
        (w) =>
          w.rule === finding.ruleId &&
          (w.lines === undefined ||
            w.lines.has(finding.line) ||
            (w.service !== undefined && object?.name === w.service)),
      );
    if (comment) return { ...finding, waiver: { source: 'inline' as const, reason: comment.reason } };
    const entry = active.find(
      (candidate) => candidate.rule === finding.ruleId && selectorMatches(candidate, finding),
    );
    if (entry) {
      used.add(entry);
      return {
        ...finding,
        waiver: { source: 'file' as const, reason: entry.reason, owner: entry.owner, expires: entry.expires },
      };
    }
    return finding;
  });
  return { findings: out, expired, unused: active.filter((entry) => !used.has(entry)) };
}
