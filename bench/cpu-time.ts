/**
 * CPU time per process group over a load run, read from /proc (Linux only; elsewhere it reports
 * nothing). On a two-core machine the load generator, every cardhold role and PostgreSQL share the
 * same CPUs, so "where did the CPU go, per request" says more than wall-clock throughput alone.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

export type Groups = Record<string, Map<string, number>>;

/** Names a process by its command line, or undefined for processes that are none of ours. */
export type Classifier = (commandLine: string, pid: number) => string | undefined;

/** PostgreSQL's processes (postmaster and backends) and Redis, which every bench counts the same way. */
export function serviceOf(commandLine: string): 'postgres' | 'redis' | undefined {
  if (/^postgres(:|\s|$)|\/postgres\s/.test(commandLine)) return 'postgres';
  if (/redis-server/.test(commandLine)) return 'redis';
  return undefined;
}

export function cpuSnapshot(classify: Classifier): Groups {
  const groups: Groups = {};
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return groups;
  }
  for (const pid of pids) {
    let commandLine: string;
    let stat: string;
    try {
      commandLine = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ');
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    const group = classify(commandLine, Number(pid));
    if (!group) continue;
    // Fields after the parenthesised command name: state is field 3, utime 14 and stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const pidsOfGroup = groups[group] ?? new Map<string, number>();
    pidsOfGroup.set(pid, ticks);
    groups[group] = pidsOfGroup;
  }
  return groups;
}

/** Microseconds of CPU per request for each group between two snapshots. */
export function cpuPerRequest(before: Groups, after: Groups, requests: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [group, pids] of Object.entries(after)) {
    let ticks = 0;
    for (const [pid, t] of pids) ticks += t - (before[group]?.get(pid) ?? 0);
    out[group] = Math.round(((ticks / TICKS_PER_SECOND) * 1e6) / Math.max(1, requests));
  }
  return out;
}

export function formatCpu(perRequest: Record<string, number>): string {
  const total = Object.values(perRequest).reduce((a, b) => a + b, 0);
  const parts = Object.entries(perRequest)
    .sort((a, b) => b[1] - a[1])
    .map(([group, us]) => `${group} ${us}`);
  return `CPU µs/request: ${parts.join(', ')}; total ${total}`;
}
