/** Shared vocabulary of the scanner: severities, object paths, locations and findings. */

export const severities = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof severities)[number];

export function severityRank(severity: Severity): number {
  return severities.indexOf(severity);
}

export function isSeverity(value: string): value is Severity {
  return (severities as readonly string[]).includes(value);
}

/** A path into a parsed document: map keys and sequence indexes. */
export type Path = readonly (string | number)[];

export interface Position {
  line: number;
  column: number;
}

/** A parsed document that can tell the line of any field it holds. */
export interface SourceDocument {
  /** Path as given (relative to the working directory), or a label such as `<stdin>` or `cluster:…`. */
  file: string;
  /** Position of the deepest node of `path` that exists in the source (1-based lines). */
  locate(path: Path): Position;
}

/** Where an object sits in a Kubernetes-like world: the logical location of a finding. */
export interface ObjectRef {
  kind: string;
  name: string;
  namespace?: string;
  container?: string;
}

export interface Finding {
  ruleId: string;
  severity: Severity;
  message: string;
  file: string;
  line: number;
  column: number;
  object?: ObjectRef;
  /** Set when an inline comment, annotation or waiver file entry accepts this finding. */
  waiver?: { source: 'inline' | 'file'; reason: string; owner?: string; expires?: string };
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function asObject(value: unknown): JsonObject {
  return isObject(value) ? value : {};
}

export function asArray(value: unknown): Json[] {
  return Array.isArray(value) ? value : [];
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
