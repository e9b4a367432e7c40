import type { CardBrand } from '../vault/card-brands.ts';
import type { Confidence } from './confidence.ts';
import type { TextEncoding } from './text-encoding.ts';

/** Where a finding is: a file (archive members joined with `!`), standard input, a column, a Redis key. */
export type FindingLocation =
  | { source: 'file'; path: string }
  | { source: 'stdin'; path: '-' }
  | { source: 'postgres'; database: string; table: string; db_column: string; row_key: string }
  | { source: 'redis'; key: string; field: string | null };

/** One card number found. Every string in it is masked; it never holds the digits. */
export type Finding = FindingLocation & {
  line: number;
  column: number;
  brand: Exclude<CardBrand, 'unknown'>;
  length: number;
  masked: string;
  confidence: Confidence;
  test_card: boolean;
  encoding: TextEncoding;
  separated: boolean;
  json_escaped: boolean;
};

/** Something not scanned (a limit, a policy) or not readable, with where. Masked like a finding. */
export interface Notice {
  source: string;
  message: string;
}

/** Where scanning reports to. Implementations mask nothing themselves: callers hand over masked text. */
export interface DiscoverySink {
  finding(finding: Finding): void;
  /** Skipped on purpose (size, symlink, depth, cap): the scan is narrower than asked. */
  warning(notice: Notice): void;
  /** Could not be read: the scan is incomplete. */
  error(notice: Notice): void;
  /** Bytes of content fed to the detector, for progress and the summary. */
  scanned(bytes: number): void;
}

/** A location's human-readable name, for notices and text output (masked). */
export function describeLocation(location: FindingLocation): string {
  switch (location.source) {
    case 'file':
    case 'stdin':
      return location.path;
    case 'postgres':
      return `postgres ${location.database} ${location.table}.${location.db_column} [${location.row_key}]`;
    case 'redis':
      return `redis ${location.key}${location.field === null ? '' : ` ${location.field}`}`;
  }
}
