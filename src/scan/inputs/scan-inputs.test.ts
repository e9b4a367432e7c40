import assert from 'node:assert/strict';
import { test } from 'node:test';
import { benchManifest } from '../../../test/fixtures/scan-corpus.ts';
import { defaultScanConfig } from '../config.ts';
import { buildReport } from '../scan.ts';
import { parseFastYaml } from './fast-yaml.ts';
import { ScanInputs } from './scan-inputs.ts';
import { parseYamlDocuments, parseYamlDocumentsWithTree } from './yaml-source.ts';

/** Files the fast path leaves to the `yaml` Document path, each with findings of its own. */
const exotic: Record<string, string> = {
  'anchors.yaml': `apiVersion: v1
kind: Pod
metadata: {name: anchored, namespace: shop}
spec:
  containers:
  - &app
    name: app
    image: web
    securityContext: {privileged: true}
  - <<: *app
    name: sidecar
`,
  'tagged.yaml': `apiVersion: v1\nkind: Pod\nmetadata: {name: tagged}\nspec:\n  hostNetwork: !!bool true\n  containers: [{name: a, image: "a:1"}]\n`,
};

/** Plain files with the shapes that need care when locating: quoted keys, block scalars, empty items. */
const plain: Record<string, string> = {
  'shapes.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: "shapes"
  namespace: shop
spec:
  template:
    metadata: {labels: {app: shapes}}
    spec:
      containers:
      - name: app
        image: 'registry.example.com/app'
        args:
        - |
          echo start
        -
        "securityContext":
          runAsUser: 0
          capabilities: {add: [SYS_ADMIN]}
        env:
        - name: API_TOKEN
          value: >-
            s3cr3t-t0ken-value
      - name: second
        # cardhold:waive image.tag=rebuilt nightly
        image: app:latest
        ports: [{containerPort: 80, hostPort: 80}]
`,
  'list.json': JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'in-list' },
          spec: { hostPID: true, containers: [{ name: 'c', image: 'c' }] },
        },
      ],
    },
    null,
    2,
  ),
  'crlf.yaml': `apiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: crlf}\r\ndata:\r\n  password: hunter2hunter2\r\n`,
  'compose.yaml': `services:\n  web:\n    image: nginx\n    privileged: true\n    ports: ["8080:80"]\n    environment:\n      DB_PASSWORD: hunter2hunter2\n`,
};

function corpus(): Record<string, string> {
  const files: Record<string, string> = { ...exotic, ...plain };
  for (let file = 0; file < 30; file++) {
    const documents = Array.from({ length: 10 }, (_, i) => benchManifest(file * 10 + i));
    files[`bench-${file}.yaml`] = documents.join('---\n');
  }
  return files;
}

function report(parse: typeof parseYamlDocuments) {
  const inputs = new ScanInputs();
  for (const [file, text] of Object.entries(corpus())) inputs.addYaml(text, file, parse);
  return buildReport(inputs, defaultScanConfig, [], new Date('2026-06-01T00:00:00Z'));
}

test('lazily located findings equal the eagerly located ones on a mixed corpus', () => {
  const lazy = report(parseYamlDocuments);
  const eager = report(parseYamlDocumentsWithTree);
  assert.ok(eager.findings.length > 500, `only ${eager.findings.length} findings`);
  assert.deepEqual(lazy.findings, eager.findings);
  assert.deepEqual(lazy.summary, eager.summary);
  const lines = new Set(eager.findings.map((finding) => `${finding.file}:${finding.line}`));
  assert.ok(lines.size > 300, 'findings sit on many different lines');
  assert.ok(
    eager.findings.some((finding) => finding.waiver?.source === 'inline'),
    'a comment waiver applied by line',
  );
});

test('the corpus exercises both paths', () => {
  for (const [file, text] of Object.entries(exotic)) assert.equal(parseFastYaml(text), undefined, file);
  for (const [file, text] of Object.entries(plain)) assert.ok(parseFastYaml(text), file);
  assert.ok(parseFastYaml(corpus()['bench-0.yaml'] ?? ''));
});
