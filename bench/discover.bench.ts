/**
 * `cardhold discover` throughput and memory on plain text: generates log-like JSON lines (pino shape:
 * epoch-millisecond times, request ids, URLs, durations, a few planted card numbers) into a temporary
 * file, then scans it in a child process that reports scan seconds, CPU seconds (process.cpuUsage(), user
 * + system, which do not depend on how busy the machine is) and peak RSS (process.resourceUsage().maxRSS).
 * A second child only reads the file, as the I/O ceiling. The load average is printed before each run.
 *
 *   npx tsx bench/discover.bench.ts            # 100 MB and 1 GB files (BENCH_DISCOVER_SIZES_MB=100,1024)
 *   BENCH_DISCOVER_RUNS=3 npx tsx bench/discover.bench.ts   # each file scanned three times
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomPan } from '../test/fixtures/discover-corpus.ts';

const self = fileURLToPath(import.meta.url);

async function child(mode: string, file: string): Promise<void> {
  // Loaded before the clocks start: compiling the TypeScript modules is not scanning.
  const { discover, discoverOptions } = await import('../src/discover/discover.ts');
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  let bytes = 0;
  let findings = 0;
  if (mode === 'read') {
    for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) bytes += chunk.length;
  } else {
    const result = await discover(discoverOptions({ paths: [file] }), { finding: () => {}, end: () => {} });
    bytes = result.summary.bytes;
    findings = result.summary.findings;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(
    JSON.stringify({ bytes, seconds, cpuSeconds, findings, maxRssMB: process.resourceUsage().maxRSS / 1024 }),
  );
}

/** Writes about `megabytes` MB of log lines with `planted` card numbers spread through them. */
async function generate(file: string, megabytes: number, planted: number): Promise<void> {
  const out = createWriteStream(file);
  const target = megabytes * 1e6;
  const plantEvery = Math.floor(target / 300 / planted);
  let written = 0;
  let i = 0;
  while (written < target) {
    let block = '';
    for (let k = 0; k < 2000; k++, i++) {
      const extra = i % plantEvery === plantEvery - 1 ? `,"note":"card ${randomPan()}"` : '';
      block += `{"level":30,"time":${1767225600000 + i},"pid":${4000 + (i % 7)},"hostname":"vault-7d9f8c-x2k4q","reqId":"req-${i.toString(36)}","req":{"method":"GET","url":"/v1/tokens/tok_${(i * 7919).toString(36)}Qx9","remoteAddress":"10.0.${i % 250}.${i % 200}"},"res":{"statusCode":200},"responseTime":${((i % 997) / 7).toFixed(3)}${extra},"msg":"request completed"}\n`;
    }
    written += Buffer.byteLength(block);
    if (!out.write(block)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve) => out.end(resolve));
}

interface ChildResult {
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  findings: number;
  maxRssMB: number;
}

function run(mode: string, file: string): ChildResult {
  // The child runs as `cardhold` does: Node.js's own type stripping, not the tsx loader (whose
  // transform wraps every closure in a naming helper and so measures something else).
  const r = spawnSync(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', self, '--child', mode, file],
    {
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function main(): Promise<void> {
  const sizes = (process.env['BENCH_DISCOVER_SIZES_MB'] ?? '100,1024').split(',').map(Number);
  const runs = Number(process.env['BENCH_DISCOVER_RUNS'] ?? '1');
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-discover-bench-'));
  console.log(`node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
  try {
    for (const mb of sizes) {
      const file = path.join(dir, `corpus-${mb}.log`);
      const planted = 20;
      await generate(file, mb, planted);
      for (let r = 0; r < runs; r++) {
        const load = loadavg().map((l) => l.toFixed(2));
        const read = run('read', file);
        const scan = run('scan', file);
        const rate = (x: ChildResult) => (x.bytes / 1e6 / x.seconds).toFixed(0);
        // CPU seconds per GB and MB per CPU-second: what the scan costs, whatever else the machine runs.
        const perCpu = (x: ChildResult) =>
          `${((x.cpuSeconds * 1e9) / x.bytes).toFixed(2)} CPU-s/GB, ${(x.bytes / 1e6 / x.cpuSeconds).toFixed(0)} MB/CPU-s`;
        console.log(
          `${mb} MB (load ${load.join(' ')}): discover ${rate(scan)} MB/s (${scan.seconds.toFixed(1)} s, ${perCpu(scan)}, ${scan.findings} found, peak RSS ${scan.maxRssMB.toFixed(0)} MB); ` +
            `read only ${rate(read)} MB/s (${perCpu(read)}, peak RSS ${read.maxRssMB.toFixed(0)} MB)`,
        );
      }
      await rm(file);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3] as string, process.argv[4] as string);
else await main();
