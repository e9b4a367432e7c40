import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { XMLParser } from 'fast-xml-parser';
import { allTestPans, testCards } from '../../test/fixtures/cards.ts';
import { outputDir } from '../../test/global-setup.ts';
import { runScan, type ScanCommandOptions } from './run-scan.ts';

const repositoryRoot = path.resolve(import.meta.dirname, '../..');

async function scan(
  options: Partial<ScanCommandOptions> & { paths: string[] },
  stdin = '',
  env: { now?: Date } = {},
) {
  let stdout = '';
  let stderr = '';
  const code = await runScan(
    { format: 'text', ...options },
    {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      readStdin: async () => stdin,
      now: env.now ?? new Date('2026-06-01T00:00:00Z'),
    },
  );
  return { code, stdout, stderr };
}

// Inputs (some hold test card numbers on purpose) live outside test-output/; the reports go into it, so
// that the suite's artifact scan checks them for card numbers too.
const work = await mkdtemp(path.join(os.tmpdir(), 'cardhold-scan-'));
const reports = await mkdtemp(path.join(outputDir, 'scan-'));
after(() => rm(work, { recursive: true, force: true }));
const goodPod = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`;
const badManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: leaky
  namespace: shop
data:
  card: "${testCards.visa}"
  note: "${testCards.mastercard.replace(/(\d{4})(?=\d)/g, '$1-')}"
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
spec:
  containers:
  - name: app
    image: nginx:latest
    securityContext:
      privileged: true
`;
await writeFile(path.join(work, 'good.yaml'), goodPod);
await writeFile(path.join(work, 'bad.yaml'), badManifest);

describe('cardhold scan: exit codes', () => {
  test('0 when nothing reaches --fail-on, 1 when something does, 2 on usage or input errors', async () => {
    assert.equal((await scan({ paths: [path.join(work, 'good.yaml')] })).code, 0);
    assert.equal((await scan({ paths: [path.join(work, 'bad.yaml')] })).code, 1);
    assert.equal((await scan({ paths: [path.join(work, 'bad.yaml')], failOn: 'critical' })).code, 1);
    assert.equal((await scan({ paths: [path.join(work, 'good.yaml')], failOn: 'bogus' })).code, 2);
    assert.equal((await scan({ paths: [path.join(work, 'missing.yaml')] })).code, 2);
    assert.equal((await scan({ paths: [path.join(work, 'good.yaml')], format: 'xml' })).code, 2);
    await writeFile(path.join(work, 'broken.yaml'), 'a: [1, 2\n');
    const broken = await scan({ paths: [path.join(work, 'broken.yaml')] });
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /broken\.yaml:\d+:\d+: not valid YAML/);
  });

  test('standard input is read with -', async () => {
    const result = await scan({ paths: ['-'], format: 'json' }, 'FROM node:24\nRUN curl https://x | sh\n');
    const report = JSON.parse(result.stdout) as { findings: { ruleId: string; file: string }[] };
    assert.ok(report.findings.some((f) => f.ruleId === 'docker.curl-pipe-shell' && f.file === '<stdin>'));
  });
});

describe('cardhold scan: no full card number in any output', () => {
  for (const format of ['text', 'json', 'sarif', 'junit', 'html'] as const) {
    test(format, async () => {
      const out = path.join(reports, `cards.${format}`);
      const result = await scan({ paths: [path.join(work, 'bad.yaml')], format, out });
      const text = `${await readFile(out, 'utf8')}${result.stdout}${result.stderr}`;
      assert.match(text, /secrets\.card-number/);
      for (const pan of allTestPans) {
        assert.ok(!text.replace(/[\s-]/g, '').includes(pan), `${format} output contains a full card number`);
      }
    });
  }
});

describe('cardhold scan: outputs', () => {
  test('SARIF validates against the SARIF 2.1.0 JSON schema and carries physical and logical locations', async () => {
    const schema = JSON.parse(
      readFileSync(path.join(repositoryRoot, 'test/fixtures/sarif/sarif-2.1.0.json'), 'utf8'),
    );
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const validate = ajv.compile(schema);
    const { stdout } = await scan({ paths: [path.join(work, 'bad.yaml')], format: 'sarif' });
    // biome-ignore lint/suspicious/noExplicitAny: a parsed SARIF document, checked field by field below
    const sarif = JSON.parse(stdout) as any;
    assert.ok(validate(JSON.parse(stdout)), JSON.stringify(validate.errors?.slice(0, 3)));
    const privileged = sarif.runs[0].results.find(
      (r: { ruleId: string }) => r.ruleId === 'pss.baseline.privileged',
    );
    assert.equal(
      privileged.locations[0].physicalLocation.region.startLine,
      badManifest.split('\n').indexOf('      privileged: true') + 1,
    );
    assert.equal(privileged.locations[0].logicalLocations[0].fullyQualifiedName, 'shop/Pod/web/app');
    // a broken document does not validate: the schema check can fail
    assert.equal(validate({ ...sarif, version: '2.0.0' }), false);
  });

  test('JUnit XML parses back with a failing case per unwaived finding', async () => {
    const { stdout } = await scan({ paths: [path.join(work, 'bad.yaml')], format: 'junit' });
    const parsed = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(stdout);
    const suites = parsed.testsuites.testsuite as { name: string; failures: string; testcase: unknown }[];
    const privileged = suites.find((s) => s.name === 'pss.baseline.privileged');
    assert.equal(privileged?.failures, '1');
    const json = JSON.parse((await scan({ paths: [path.join(work, 'bad.yaml')], format: 'json' })).stdout);
    assert.equal(Number(parsed.testsuites.failures), json.summary.unwaived);
  });

  test('the JSON report follows its published schema', async () => {
    const schema = JSON.parse(
      readFileSync(path.join(import.meta.dirname, 'reporters/report.schema.json'), 'utf8'),
    );
    const validate = new Ajv2020({ strict: false }).compile(schema);
    const report = JSON.parse(
      (await scan({ paths: [path.join(work, 'bad.yaml')], format: 'json' })).stdout,
    ) as { result: string };
    assert.ok(validate(report), JSON.stringify(validate.errors));
    assert.equal(report.result, 'fail');
    assert.ok(!JSON.stringify(report).toLowerCase().includes('"compliant"'));
  });
});

describe('cardhold scan: waivers', () => {
  test('inline annotation and comment waivers; file waivers with owner and expiry; expired fail, unused reported', async () => {
    await writeFile(
      path.join(work, 'waived.yaml'),
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n  annotations: {cardhold.dev/waive: "pss.baseline.privileged=needs a device; image.tag=pinned by admission"}\nspec:\n  containers: [{name: app, image: "nginx:latest", securityContext: {privileged: true}}]\n`,
    );
    await writeFile(
      path.join(work, 'Dockerfile'),
      'FROM alpine:3.20\n# cardhold:waive docker.tls-verification=internal mirror with its own CA\nRUN curl -k https://mirror/x\nUSER 1000\n',
    );
    const waiverFile = path.join(work, 'waivers.yaml');
    await writeFile(
      waiverFile,
      `waivers:\n- {rule: workload.read-only-root, selector: {kind: Pod, name: web}, owner: alice@example.com, reason: legacy app, expires: "2026-12-31"}\n- {rule: docker.user, selector: {file: "**/Dockerfile"}, owner: bob@example.com, reason: old waiver, expires: "2026-01-01"}\n- {rule: rbac.wildcard, owner: carol@example.com, reason: nothing matches, expires: "2027-01-01"}\n`,
    );
    const paths = [path.join(work, 'waived.yaml'), path.join(work, 'Dockerfile')];
    const result = await scan({ paths, format: 'json', waivers: waiverFile, failOn: 'critical' });
    const report = JSON.parse(result.stdout);
    const waived = (id: string) => report.findings.find((f: { ruleId: string }) => f.ruleId === id)?.waiver;
    assert.equal(waived('pss.baseline.privileged')?.reason, 'needs a device');
    assert.equal(waived('image.tag')?.source, 'inline');
    assert.equal(waived('docker.tls-verification')?.reason, 'internal mirror with its own CA');
    assert.equal(waived('workload.read-only-root')?.owner, 'alice@example.com');
    assert.equal(waived('docker.user'), undefined, 'an expired waiver waives nothing');
    assert.deepEqual(
      report.waivers.expired.map((w: { rule: string }) => w.rule),
      ['docker.user'],
    );
    assert.deepEqual(
      report.waivers.unused.map((w: { rule: string }) => w.rule),
      ['rbac.wildcard'],
    );
    assert.equal(result.code, 1, 'an expired waiver fails the scan even below --fail-on');
    const later = await scan({ paths, waivers: waiverFile, failOn: 'critical' }, '', {
      now: new Date('2027-02-01T00:00:00Z'),
    });
    assert.match(later.stdout, /expired waiver: workload\.read-only-root/);
  });

  test('a malformed waiver file is an input error', async () => {
    await writeFile(path.join(work, 'bad-waivers.yaml'), 'waivers: [{rule: x}]\n');
    assert.equal(
      (await scan({ paths: [path.join(work, 'good.yaml')], waivers: path.join(work, 'bad-waivers.yaml') }))
        .code,
      2,
    );
  });
});

describe('cardhold scan: renderers and Compose', () => {
  test('a Kustomize directory is rendered with kubectl kustomize', async () => {
    const dir = path.join(work, 'kustomize');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'kustomization.yaml'), 'namespace: shop\nresources: [pod.yaml]\n');
    await writeFile(
      path.join(dir, 'pod.yaml'),
      'apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: app, image: "nginx:latest"}]\n',
    );
    const report = JSON.parse((await scan({ paths: [dir], format: 'json' })).stdout);
    const tag = report.findings.find((f: { ruleId: string }) => f.ruleId === 'image.tag');
    assert.equal(
      tag?.object.namespace,
      'shop',
      'the namespace comes from the kustomization: it was rendered',
    );
  });

  test('a Helm chart without helm installed is a loud warning, not a silent skip', async () => {
    const dir = path.join(work, 'chart');
    await mkdir(path.join(dir, 'templates'), { recursive: true });
    await writeFile(path.join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: demo\nversion: 0.1.0\n');
    await writeFile(
      path.join(dir, 'templates', 'pod.yaml'),
      'apiVersion: v1\nkind: Pod\nmetadata: {name: {{ .Release.Name }}}\n',
    );
    const result = await scan({ paths: [dir], helm: 'cardhold-no-such-helm', format: 'json' });
    assert.match(result.stderr, /a Helm chart, but cardhold-no-such-helm is not installed: NOT SCANNED/);
    assert.match(JSON.parse(result.stdout).warnings[0], /NOT SCANNED/);
  });

  test('Compose services go through the same rules, pointing at the Compose key', async () => {
    const file = path.join(work, 'compose.yaml');
    await writeFile(
      file,
      'services:\n  web:\n    image: nginx:1.27\n    privileged: true\n    network_mode: host\n    security_opt: ["seccomp=unconfined"]\n    environment:\n      DB_PASSWORD: hunter2hunter2\n',
    );
    const report = JSON.parse((await scan({ paths: [file], format: 'json' })).stdout);
    const line = (id: string) => report.findings.find((f: { ruleId: string }) => f.ruleId === id)?.line;
    assert.equal(line('pss.baseline.privileged'), 4);
    assert.equal(line('pss.baseline.host-namespaces'), 5);
    assert.equal(line('pss.baseline.seccomp'), 6);
    assert.equal(line('secrets.env-literal'), 8);
  });
});

describe('cardhold scan --cluster against a stand-in API server', () => {
  const requests: string[] = [];
  const pods = Array.from({ length: 5 }, (_, i) => ({
    metadata: { name: `pod-${i}`, namespace: 'shop' },
    spec: { containers: [{ name: 'app', image: 'nginx:latest', securityContext: { privileged: i === 3 } }] },
  }));
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    requests.push(`${url.pathname}?${url.searchParams}`);
    response.setHeader('content-type', 'application/json');
    if (url.pathname === '/api/v1/namespaces/shop/pods') {
      const start = Number(url.searchParams.get('continue') ?? 0);
      const limit = Number(url.searchParams.get('limit'));
      const next = start + limit < pods.length ? String(start + limit) : undefined;
      response.end(
        JSON.stringify({
          kind: 'PodList',
          apiVersion: 'v1',
          metadata: next ? { continue: next } : {},
          items: pods.slice(start, start + limit),
        }),
      );
      return;
    }
    response.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: {}, items: [] }));
  });
  after(() => server.close());

  test('lists every kind page by page in the named namespace and scans what it gets', async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const kubeconfig = path.join(work, 'kubeconfig');
    await writeFile(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: stand-in, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: tester, user: {token: test-token}}]\ncontexts: [{name: stand-in, context: {cluster: stand-in, user: tester}}]\ncurrent-context: stand-in\n`,
    );
    const previous = process.env['KUBECONFIG'];
    process.env['KUBECONFIG'] = kubeconfig;
    const { runScan: run } = await import('./run-scan.ts');
    const { readCluster } = await import('./inputs/cluster.ts');
    const { ScanInputs } = await import('./inputs/scan-inputs.ts');
    try {
      const inputs = new ScanInputs();
      await readCluster(inputs, { namespaces: ['shop'], pageSize: 2 });
      assert.equal(inputs.workloads.length, 5, 'all three pages of pods were read');
      assert.ok(requests.includes('/api/v1/namespaces/shop/pods?limit=2&continue=2'));
      assert.ok(requests.some((r) => r.startsWith('/apis/rbac.authorization.k8s.io/v1/clusterroles?')));
      assert.ok(!requests.some((r) => r.includes('/secrets')), 'Secrets are never read from a cluster');
      let stdout = '';
      const code = await run(
        { paths: [], cluster: true, namespace: ['shop'], format: 'json' },
        {
          stdout: { write: (t: string) => (stdout += t) },
          stderr: { write: () => true },
          readStdin: async () => '',
        },
      );
      assert.equal(code, 1);
      const finding = JSON.parse(stdout).findings.find(
        (f: { ruleId: string }) => f.ruleId === 'pss.baseline.privileged',
      );
      assert.equal(finding.object.name, 'pod-3');
      assert.match(finding.file, /^cluster:stand-in\/Pod\/shop\/pod-3$/);
    } finally {
      if (previous === undefined) delete process.env['KUBECONFIG'];
      else process.env['KUBECONFIG'] = previous;
    }
  });
});
