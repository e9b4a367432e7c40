import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DiscoverySink } from './finding.ts';
import { readError, redactDigitRuns } from './masking.ts';

export interface WalkOptions {
  /** When given, a file must match one of these (relative to the path it was found under). */
  include: readonly string[];
  /** Files and directories matching any of these are skipped. */
  exclude: readonly string[];
  /** Files larger than this are skipped with a warning (undefined: no limit). */
  maxFileSize: number | undefined;
  /** Follow symbolic links met inside directories (paths named on the command line are always followed). */
  followSymlinks: boolean;
}

/**
 * Yields the regular files under each root, in a stable (sorted) order, with the name to report them by.
 * Symbolic links inside directories are skipped unless followed; followed directories are entered once
 * (device and inode), so a link cycle ends. Special files (sockets, pipes, devices) are skipped.
 */
export async function* walkFiles(
  roots: readonly string[],
  options: WalkOptions,
  sink: DiscoverySink,
): AsyncGenerator<{ filePath: string; displayName: string }> {
  const visited = new Set<string>();
  for (const root of roots) {
    let info: Stats;
    try {
      info = await stat(root);
    } catch (error) {
      sink.error({ source: redactDigitRuns(root), message: readError(error) });
      continue;
    }
    if (info.isDirectory()) yield* walkDirectory(root, '', options, sink, visited);
    else if (admit(root, path.basename(root), info, options, sink))
      yield { filePath: root, displayName: root };
  }
}

async function* walkDirectory(
  root: string,
  relative: string,
  options: WalkOptions,
  sink: DiscoverySink,
  visited: Set<string>,
): AsyncGenerator<{ filePath: string; displayName: string }> {
  const dir = path.join(root, relative);
  try {
    const info = await stat(dir);
    const id = `${info.dev}:${info.ino}`;
    if (visited.has(id)) return;
    visited.add(id);
  } catch (error) {
    sink.error({ source: redactDigitRuns(dir), message: readError(error) });
    return;
  }
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    sink.error({ source: redactDigitRuns(dir), message: readError(error) });
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const rel = relative ? `${relative}/${entry.name}` : entry.name;
    const full = path.join(root, rel);
    if (matchesAny(rel, options.exclude)) continue;
    let info: Stats;
    try {
      info = await lstat(full);
      if (info.isSymbolicLink()) {
        if (!options.followSymlinks) {
          sink.warning({
            source: redactDigitRuns(full),
            message: 'symbolic link not followed (--follow-symlinks)',
          });
          continue;
        }
        info = await stat(full);
      }
    } catch (error) {
      sink.error({ source: redactDigitRuns(full), message: readError(error) });
      continue;
    }
    if (info.isDirectory()) yield* walkDirectory(root, rel, options, sink, visited);
    else if (options.include.length > 0 && !matchesAny(rel, options.include)) continue;
    else if (admit(full, rel, info, options, sink)) yield { filePath: full, displayName: full };
  }
}

function admit(full: string, rel: string, info: Stats, options: WalkOptions, sink: DiscoverySink): boolean {
  if (!info.isFile()) {
    sink.warning({ source: redactDigitRuns(full), message: 'not a regular file: skipped' });
    return false;
  }
  if (options.exclude.length > 0 && matchesAny(rel, options.exclude)) return false;
  if (options.maxFileSize !== undefined && info.size > options.maxFileSize) {
    sink.warning({
      source: redactDigitRuns(full),
      message: `larger than --max-file-size (${info.size} > ${options.maxFileSize} bytes): skipped`,
    });
    return false;
  }
  return true;
}

/** A glob matches the path relative to its root; a glob without `/` also matches the base name alone. */
export function matchesAny(relative: string, globs: readonly string[]): boolean {
  for (const glob of globs) {
    if (path.posix.matchesGlob(relative, glob)) return true;
    if (!glob.includes('/') && path.posix.matchesGlob(path.posix.basename(relative), glob)) return true;
  }
  return false;
}
