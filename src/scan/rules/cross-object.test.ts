import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultScanConfig } from '../config.ts';
import { ScanInputs } from '../inputs/scan-inputs.ts';
import { buildReport } from '../scan.ts';

/** The rules that join objects across files (through per-namespace indexes) on a multi-namespace estate. */

const pod = (name: string, namespace: string, labels: string) =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${namespace}, labels: {${labels}}}\nspec:\n  containers: [{name: app, image: "app:1.0"}]\n`;
const policy = (name: string, namespace: string, selector: string, types: string, extra = '') =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: {podSelector: ${selector}, policyTypes: ${types}${extra}}\n`;
const service = (name: string, namespace: string, type: string, app: string) =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: {type: ${type}, selector: {app: ${app}}, ports: [{port: 80}]}\n`;

const files: Record<string, string> = {
  'shop/pods.yaml': [pod('web', 'shop', 'app: web'), pod('worker', 'shop', 'app: worker')].join('---\n'),
  'shop/policies.yaml': [
    policy('deny-ingress', 'shop', '{}', '[Ingress]'),
    policy('web-egress', 'shop', '{matchLabels: {app: web}}', '[Egress]', ', egress: [{}]'),
  ].join('---\n'),
  'pay/all.yaml': [pod('api', 'pay', 'app: api'), policy('deny', 'pay', '{}', '[Ingress, Egress]')].join(
    '---\n',
  ),
  'cde/namespace.yaml': `apiVersion: v1\nkind: Namespace\nmetadata: {name: vault, labels: {cardhold.dev/cde: "true"}}\n`,
  'cde/vault.yaml': [
    pod('vault', 'vault', 'app: vault'),
    policy('deny', 'vault', '{}', '[Ingress, Egress]'),
    policy('open', 'vault', '{}', '[Ingress]', ', ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}]}]'),
  ].join('---\n'),
  'other/services.yaml': [
    service('same-selector-elsewhere', 'shop', 'NodePort', 'vault'),
    service('vault-nodeport', 'vault', 'NodePort', 'vault'),
  ].join('---\n'),
};

function findings(ruleId: string): string[] {
  const inputs = new ScanInputs();
  for (const [file, text] of Object.entries(files)) inputs.addYaml(text, file);
  return buildReport(inputs, defaultScanConfig, [])
    .findings.filter((finding) => finding.ruleId === ruleId)
    .map((finding) => `${finding.file}:${finding.line} ${finding.message}`);
}

test('pod coverage: an empty-selector policy covers one direction, an app policy the other for one pod', () => {
  assert.deepEqual(findings('netpol.pod-coverage'), [
    'shop/pods.yaml:10 no NetworkPolicy selects the pod for Egress',
  ]);
});

test('default deny is judged once per namespace and reported at its first workload', () => {
  assert.deepEqual(findings('netpol.default-deny'), [
    'shop/pods.yaml:4 namespace shop has no default-deny NetworkPolicy for Egress',
  ]);
});

test('CDE exposure joins a Service only to CDE workloads of its own namespace', () => {
  assert.deepEqual(findings('cde.exposure'), [
    'other/services.yaml:9 Service vault-nodeport exposes CDE workload vault as NodePort',
  ]);
});

test('CDE namespace isolation reads the namespace’s own policies', () => {
  assert.deepEqual(findings('cde.namespace-isolation'), [
    'cde/vault.yaml:15 NetworkPolicy open lets any source into CDE namespace vault',
  ]);
});
