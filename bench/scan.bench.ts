/**
 * Scanner throughput: generates a corpus of Kubernetes manifests (workloads of every kind, Services,
 * ConfigMaps, NetworkPolicies, RBAC), then times reading, rule evaluation and the JSON report, and reads
 * the process's peak RSS. Beside wall-clock time it reports the CPU time the process spent (user + system,
 * from process.cpuUsage()), which other work on a shared machine inflates far less than wall-clock time.
 * Usage: npx tsx bench/scan.bench.ts [manifests=5000] [documents per file=10]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultScanConfig } from '../src/scan/config.ts';
import { readPaths } from '../src/scan/inputs/files.ts';
import { ScanInputs } from '../src/scan/inputs/scan-inputs.ts';
import { renderJson } from '../src/scan/reporters/json.ts';
import { buildReport } from '../src/scan/scan.ts';
import { benchManifest as manifest } from '../test/fixtures/scan-corpus.ts';

const total = Number(process.argv[2] ?? 5000);
const perFile = Number(process.argv[3] ?? 10);

const dir = await mkdtemp(path.join(os.tmpdir(), 'cardhold-scan-bench-'));
try {
  await mkdir(dir, { recursive: true });
  for (let file = 0; file * perFile < total; file++) {
    const docs: string[] = [];
    for (let i = file * perFile; i < Math.min(total, (file + 1) * perFile); i++) docs.push(manifest(i));
    await writeFile(path.join(dir, `m-${file}.yaml`), docs.join('---\n'));
  }
  const cpuStarted = process.cpuUsage();
  const started = performance.now();
  const inputs = new ScanInputs();
  await readPaths([dir], inputs);
  const read = performance.now();
  const readCpu = process.cpuUsage(cpuStarted);
  if (inputs.warnings.length > 0) throw new Error(`corpus not fully read: ${inputs.warnings[0]}`);
  const report = buildReport(inputs, defaultScanConfig, []);
  const ruled = performance.now();
  const ruledCpu = process.cpuUsage(cpuStarted);
  const json = renderJson(report);
  const done = performance.now();
  const cpu = process.cpuUsage(cpuStarted);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const seconds = (done - started) / 1000;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  console.log(
    JSON.stringify({
      manifests: inputs.documents,
      files: inputs.files.size,
      workloads: inputs.workloads.length,
      findings: report.summary.findings,
      readMs: Math.round(read - started),
      rulesMs: Math.round(ruled - read),
      reportMs: Math.round(done - ruled),
      reportBytes: json.length,
      manifestsPerSecond: Math.round(inputs.documents / seconds),
      cpuMs: Math.round(cpuSeconds * 1000),
      readCpuMs: Math.round((readCpu.user + readCpu.system) / 1000),
      rulesCpuMs: Math.round((ruledCpu.user + ruledCpu.system - readCpu.user - readCpu.system) / 1000),
      manifestsPerCpuSecond: Math.round(inputs.documents / cpuSeconds),
      peakRssMb: Math.round(peakRssMb),
    }),
  );
} finally {
  if (!process.env['KEEP']) await rm(dir, { recursive: true, force: true });
  else console.log(dir);
}
