import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';

const execFileAsync = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const deploy = path.join(root, 'deploy');

/** Kubernetes kinds by apiVersion → the module of their schema-validating model. */
function modelModule(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'cert-manager.io') return `@kubernetes-models/cert-manager/${group}/${version}/${kind}`;
  if (group === 'external-secrets.io')
    return `@kubernetes-models/external-secrets/${group}/${version}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

async function render(
  overlay: string,
): Promise<Array<{ apiVersion: string; kind: string; metadata: { name: string } }>> {
  const env = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}` };
  if (overlay === 'dev') {
    // Throwaway secrets into the git-ignored secrets/ the secretGenerator reads (kept when present).
    await execFileAsync(path.join(deploy, 'kubernetes/overlays/dev/generate-secrets.sh'), [], {
      env,
      timeout: 60_000,
    });
  }
  const { stdout } = await execFileAsync(
    'kubectl',
    ['kustomize', path.join(deploy, 'kubernetes/overlays', overlay)],
    {
      env,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return parseAllDocuments(stdout).map((document) => document.toJS());
}

describe('the Kubernetes deployment', () => {
  for (const overlay of ['dev', 'prod']) {
    it(`renders the ${overlay} overlay and every object validates against its OpenAPI schema`, async () => {
      const objects = await render(overlay);
      assert.ok(objects.length > 20, `only ${objects.length} objects rendered`);
      const invalid: string[] = [];
      for (const object of objects) {
        const { [object.kind]: Model } = (await import(
          modelModule(object.apiVersion, object.kind)
        )) as Record<string, new (value: unknown) => { validate(): void }>;
        assert.ok(Model, `no schema model for ${object.apiVersion} ${object.kind}`);
        // kustomize wraps generated Secrets' base64 at 70 columns; the API server's decoder (Go's
        // encoding/base64) skips line breaks, the schema's "byte" format does not: compare unwrapped.
        const data = (object as { data?: Record<string, string> }).data;
        if (object.kind === 'Secret' && data)
          for (const key of Object.keys(data)) data[key] = String(data[key]).replace(/[\r\n]/g, '');
        try {
          new Model(object).validate();
        } catch (error) {
          invalid.push(`${object.kind}/${object.metadata.name}: ${(error as Error).message}`);
        }
      }
      assert.deepEqual(invalid, []);
    });
  }

  it('the schema validation refuses a broken object (the check can fail)', async () => {
    const { Deployment } = await import('kubernetes-models/apps/v1/Deployment');
    const broken = new Deployment({
      metadata: { name: 'x' },
      spec: { selector: {}, replicas: 'two', template: { spec: { containers: [] } } },
    } as never);
    assert.throws(() => broken.validate(), /replicas must be integer/);
  });

  it('segments the CDE: namespaces, restricted Pod Security, dedicated nodes, no service account tokens', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: rendered manifests walked by path; the schema test types them
    const objects = (await render('prod')) as unknown as Array<Record<string, any>>;
    const namespaces = objects.filter((object) => object['kind'] === 'Namespace');
    assert.deepEqual(namespaces.map((ns) => ns['metadata'].name).sort(), ['cardhold', 'cardhold-cde']);
    for (const ns of namespaces)
      assert.equal(ns['metadata'].labels['pod-security.kubernetes.io/enforce'], 'restricted');
    const vault = objects.find(
      (object) => object['kind'] === 'Deployment' && object['metadata'].name === 'vault',
    );
    assert.equal(vault?.['metadata'].namespace, 'cardhold-cde');
    const pod = vault?.['spec'].template.spec;
    assert.deepEqual(pod.nodeSelector, { 'cardhold.dev/cde': 'true' });
    assert.equal(pod.runtimeClassName, 'gvisor');
    assert.equal(pod.automountServiceAccountToken, false);
    const env = Object.fromEntries(
      pod.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    assert.equal(env['CARDHOLD_VAULT_DATABASE_URL_FILE'], '/etc/cardhold/secrets/vault-db-url');
    assert.ok(
      !objects.some((object) => object['kind'] === 'Secret'),
      'prod commits no Secret: ExternalSecrets only',
    );
    const denies = objects.filter(
      (object) => object['kind'] === 'NetworkPolicy' && object['metadata'].name === 'default-deny',
    );
    assert.equal(denies.length, 2);
  });
});

describe('compose.yaml', () => {
  it('parses and declares the segmented services, networks and file secrets', async () => {
    const compose = parse(await readFile(path.join(deploy, 'compose/compose.yaml'), 'utf8'), { merge: true });
    assert.deepEqual(Object.keys(compose.services).sort(), [
      'acquirer',
      'api',
      'migrate',
      'postgres',
      'redis',
      'vault',
    ]);
    assert.equal(compose.networks.cde.internal, true);
    assert.deepEqual(compose.services.vault.networks.sort(), ['app', 'cde', 'processors']);
    assert.deepEqual(compose.services.redis.networks, ['cde']);
    for (const [name, service] of Object.entries<Record<string, unknown>>(compose.services)) {
      assert.equal(service['read_only'], true, `${name} read_only`);
      assert.deepEqual(service['cap_drop'], ['ALL'], `${name} cap_drop`);
      assert.ok(service['user'] && !String(service['user']).startsWith('0'), `${name} non-root`);
      for (const value of Object.values((service['environment'] ?? {}) as Record<string, string>))
        assert.doesNotMatch(String(value), /:\/\/[^/]*:[^@]+@/, `${name}: a credential in the environment`);
    }
    assert.match(compose.services.redis.command.join(' '), /--save\s+--appendonly no/);
  });
});

describe('cardhold scan deploy/', () => {
  it('reports no unwaived finding at any severity, nothing unscanned, no expired waiver', async () => {
    await render('dev'); // the dev overlay renders only once its throwaway secrets exist
    const out = path.join(root, 'test-output', 'deploy-scan.json');
    const run = await execFileAsync(
      process.execPath,
      [
        path.join(root, 'bin/cardhold.js'),
        'scan',
        deploy,
        '--fail-on',
        'info',
        '--format',
        'json',
        '--out',
        out,
      ],
      { env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}` } },
    ).then(
      () => 0,
      (error: { code?: number }) => error.code ?? -1,
    );
    const report = JSON.parse(await readFile(out, 'utf8'));
    const unwaived = report.findings.filter((finding: { waiver?: unknown }) => !finding.waiver);
    assert.deepEqual(unwaived, []);
    assert.deepEqual(report.warnings, []);
    assert.deepEqual(report.waivers.expired, []);
    assert.equal(report.result, 'pass');
    assert.equal(run, 0);
    // Each kind of input was read: the Dockerfile, Compose and both overlays (each carries a waived finding).
    const files: string[] = report.findings.map((finding: { file: string }) => finding.file);
    for (const file of [
      'deploy/Dockerfile',
      'deploy/compose/compose.yaml',
      'deploy/kubernetes/overlays/dev/(kustomize)',
      'deploy/kubernetes/overlays/prod/(kustomize)',
    ])
      assert.ok(
        files.some((seen) => seen.endsWith(file)),
        `${file} was scanned`,
      );
    for (const finding of report.findings)
      assert.ok(String(finding.waiver?.reason ?? '').length > 40, finding.ruleId);
  });
});

describe('CI templates', () => {
  it('parse as YAML and run the supply-chain steps', async () => {
    for (const file of ['github/cardhold-release.yaml', 'gitlab/.gitlab-ci.yml']) {
      const text = await readFile(path.join(deploy, 'ci', file), 'utf8');
      assert.ok(parse(text), file);
      for (const step of [
        'cyclonedx-npm',
        'syft',
        'trivy',
        'cosign sign',
        'cardhold.js scan deploy/ --fail-on low',
        'cardhold.js discover',
      ])
        assert.ok(text.includes(step), `${file} runs ${step}`);
    }
  });
});
