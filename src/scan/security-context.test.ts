import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ScanInputs } from './inputs/scan-inputs.ts';
import { workloadKinds } from './model.ts';
import { effectiveSecurityContext } from './security-context.ts';

/** Wraps one pod spec in each workload kind, so the resolver is proven on every shape. */
function wrap(kind: string, podSpec: string): string {
  const pod = (indent: string) => podSpec.replaceAll('\n', `\n${indent}`);
  const template = (indent: string) =>
    `template:\n${indent}  metadata: {labels: {app: x}}\n${indent}  spec:\n${indent}    ${pod(`${indent}    `)}`;
  switch (kind) {
    case 'Pod':
      return `apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  ${pod('  ')}`;
    case 'CronJob':
      return `apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: x}\nspec:\n  schedule: "* * * * *"\n  jobTemplate:\n    spec:\n      ${template('      ')}`;
    case 'PodTemplate':
      return `apiVersion: v1\nkind: PodTemplate\nmetadata: {name: x}\n${template('')}`;
    default:
      return `apiVersion: apps/v1\nkind: ${kind}\nmetadata: {name: x}\nspec:\n  ${template('  ')}`;
  }
}

const podSpec = `securityContext: {runAsUser: 1000, runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, privileged: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
initContainers:
- {name: init, image: i, securityContext: {runAsUser: 2000, seccompProfile: {type: Localhost, localhostProfile: p.json}}}
containers:
- {name: app, image: a}
- {name: override, image: b, securityContext: {runAsNonRoot: false, privileged: false, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}}
ephemeralContainers:
- {name: debug, image: d, securityContext: {runAsUser: 0}}`;

for (const kind of workloadKinds) {
  describe(`effective security context in a ${kind}`, () => {
    const inputs = new ScanInputs();
    inputs.addYaml(wrap(kind, podSpec), `${kind}.yaml`);
    const workload = inputs.workloads[0];
    test('the workload and all four containers are found', () => {
      assert.ok(workload, `${kind} not unwrapped`);
      assert.deepEqual(
        workload.containers.map((c) => `${c.type}/${c.name}`),
        ['initContainers/init', 'containers/app', 'containers/override', 'ephemeralContainers/debug'],
      );
    });
    const context = (name: string) => {
      const container = workload!.containers.find((c) => c.name === name)!;
      return effectiveSecurityContext(workload!.podSpec, container);
    };
    test('pod-level inheritable fields reach containers that do not set them', () => {
      assert.deepEqual([context('app').runAsUser.value, context('app').runAsUser.from], [1000, 'pod']);
      assert.deepEqual(context('app').seccompProfile.value, { type: 'RuntimeDefault' });
      assert.equal(context('app').runAsNonRoot.value, true);
    });
    test('container values override the pod in both directions', () => {
      assert.deepEqual(
        [context('init').runAsUser.value, context('init').runAsUser.from],
        [2000, 'container'],
      );
      assert.equal(
        context('init').seccompProfile.value &&
          (context('init').seccompProfile.value as { type: string }).type,
        'Localhost',
      );
      assert.equal(context('override').runAsNonRoot.value, false); // a container can weaken, too
      assert.deepEqual([context('debug').runAsUser.value, context('debug').runAsUser.from], [0, 'container']);
    });
    test('container-only fields set on the pod are not honoured', () => {
      for (const name of ['app', 'init', 'debug']) {
        const effective = context(name);
        assert.equal(effective.privileged.value, undefined);
        assert.equal(effective.readOnlyRootFilesystem.value, undefined);
        assert.equal(effective.allowPrivilegeEscalation.value, undefined);
        assert.equal(effective.capabilities.value, undefined);
      }
      assert.equal(context('override').privileged.value, false);
      assert.equal(context('override').readOnlyRootFilesystem.value, true);
    });
    test('findings point at the line of the field that decided', () => {
      const source = workload!.resource.source;
      const lineOf = (path: readonly (string | number)[]) => source.locate(workload!.pathOf(path)).line;
      const text = wrap(kind, podSpec).split('\n');
      assert.match(
        text[lineOf(context('app').runAsUser.path) - 1] ?? '',
        /^\s*securityContext: \{runAsUser: 1000/,
      );
      assert.match(text[lineOf(context('debug').runAsUser.path) - 1] ?? '', /name: debug/);
    });
  });
}
