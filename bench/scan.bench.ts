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

const total = Number(process.argv[2] ?? 5000);
const perFile = Number(process.argv[3] ?? 10);

function manifest(i: number): string {
  const ns = `team-${i % 40}`;
  const kinds = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'];
  switch (i % 8) {
    case 0:
      return `apiVersion: v1\nkind: Service\nmetadata: {name: svc-${i}, namespace: ${ns}}\nspec:\n  type: ${i % 16 === 0 ? 'NodePort' : 'ClusterIP'}\n  selector: {app: app-${i - 1}}\n  ports: [{port: 80, targetPort: 8080}]\n`;
    case 1:
      return `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-${i}, namespace: ${ns}}\ndata:\n  LOG_LEVEL: info\n  FEATURE_FLAGS: "a,b,c"\n  api_key: ${i % 3 === 0 ? 'abcdef123456' : '$' + '{API_KEY}'}\n`;
    case 2:
      return `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np-${i}, namespace: ${ns}}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n`;
    case 3:
      return `apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: role-${i}, namespace: ${ns}}\nrules:\n- apiGroups: [""]\n  resources: [configmaps${i % 5 === 0 ? ', secrets' : ''}]\n  verbs: [get, list]\n`;
    default: {
      const kind = kinds[i % kinds.length] ?? 'Deployment';
      const pod = `      labels: {app: app-${i}, app.kubernetes.io/name: app-${i}}
    spec:
      automountServiceAccountToken: false
      serviceAccountName: app-${i}
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      initContainers:
      - name: migrate
        image: registry.example.com/app:${i % 7}.0.${i % 11}
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, readOnlyRootFilesystem: true}
      containers:
      - name: app
        image: registry.example.com/app:${i % 7}.0.${i % 11}
        ports: [{containerPort: 8080}]
        env:
        - {name: PORT, value: "8080"}
        - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
        resources: {limits: {cpu: 500m, memory: 256Mi}, requests: {cpu: 100m, memory: 128Mi}}
        readinessProbe: {httpGet: {path: /readyz, port: 8080}}
        livenessProbe: {httpGet: {path: /livez, port: 8080}}
        securityContext: {allowPrivilegeEscalation: ${i % 9 === 0}, capabilities: {drop: [ALL]}, readOnlyRootFilesystem: true}
      volumes: [{name: tmp, emptyDir: {}}]
`;
      const template = `  template:\n    metadata:\n${pod}`;
      const indent = (text: string, by: string) => text.replace(/^(?=.)/gm, by);
      const spec =
        kind === 'CronJob'
          ? `spec:\n  schedule: "*/5 * * * *"\n  jobTemplate:\n    spec:\n${indent(template, '    ')}`
          : `spec:\n  selector: {matchLabels: {app: app-${i}}}\n${template}`;
      return `apiVersion: ${kind === 'Job' || kind === 'CronJob' ? 'batch/v1' : 'apps/v1'}\nkind: ${kind}\nmetadata: {name: app-${i}, namespace: ${ns}, labels: {app.kubernetes.io/name: app-${i}}}\n${spec}`;
    }
  }
}

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
  if (inputs.warnings.length > 0) throw new Error(`corpus not fully read: ${inputs.warnings[0]}`);
  const report = buildReport(inputs, defaultScanConfig, []);
  const ruled = performance.now();
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
      manifestsPerCpuSecond: Math.round(inputs.documents / cpuSeconds),
      peakRssMb: Math.round(peakRssMb),
    }),
  );
} finally {
  if (!process.env['KEEP']) await rm(dir, { recursive: true, force: true });
  else console.log(dir);
}
