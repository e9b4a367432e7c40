import type { Resource, Workload } from '../model.ts';
import { asArray, asObject, asString, type Json } from '../types.ts';
import { cdeNamespaces, isCdeLabelled, isCdeWorkload } from './cde.ts';
import { namespaceIndex } from './namespace-index.ts';
import { eachContainer, hostPortsOf } from './pss-baseline.ts';
import { atContainer, atResource, atWorkload, compose, k8s, type Rule } from './rule.ts';
import { isEmptySelector, selects } from './selector.ts';

/** NetworkPolicy coverage, exposure of CDE workloads, Ingress TLS and Compose network placement. */

function namespaceOf(resource: Resource): string {
  return resource.namespace ?? 'default';
}

function policyTypes(policy: Resource): string[] {
  const spec = asObject(policy.body['spec']);
  const declared = asArray(spec['policyTypes']).map(String);
  if (declared.length > 0) return declared;
  return spec['egress'] !== undefined ? ['Ingress', 'Egress'] : ['Ingress'];
}

/** Whether the namespace has a policy selecting every pod that denies by default in this direction. */
function hasDefaultDeny(policies: readonly Resource[], direction: 'Ingress' | 'Egress'): boolean {
  const rulesKey = direction === 'Ingress' ? 'ingress' : 'egress';
  return policies.some((policy) => {
    const spec = asObject(policy.body['spec']);
    return (
      isEmptySelector(spec['podSelector']) &&
      policyTypes(policy).includes(direction) &&
      asArray(spec[rulesKey]).length === 0
    );
  });
}

const netpol = (name: string, types: string, extra = '') =>
  `---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: ${types}\n${extra}`;
const shopPod = `apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\nspec:\n  containers: [{name: app, image: "web:1.0"}]\n`;

export const defaultDeny: Rule = {
  id: 'netpol.default-deny',
  title: 'Every namespace with workloads has a default-deny NetworkPolicy for ingress and egress',
  severity: 'high',
  family: 'network',
  rationale: 'Without a default deny, every pod may talk to every other pod and to the internet.',
  remediation:
    'Add a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress] and no rules; then allow what is needed.',
  mapping: {
    pci: { '1.2.1': 'direct', '1.3.1': 'direct', '1.3.2': 'direct', '1.4.1': 'supporting' },
    guidance: { '4.1': 'direct', '16.1': 'supporting' },
  },
  examples: {
    good: [k8s(`${shopPod}${netpol('default-deny', '[Ingress, Egress]')}`)],
    bad: [k8s(shopPod), k8s(`${shopPod}${netpol('deny-ingress', '[Ingress]')}`)],
  },
  *check({ workloads, resources }) {
    const policies = namespaceIndex(resources);
    const reported = new Set<string>();
    const missingIn = new Map<string, string[]>();
    for (const workload of workloads) {
      if (workload.resource.origin !== 'kubernetes') continue;
      const namespace = namespaceOf(workload.resource);
      if (reported.has(namespace)) continue;
      let missing = missingIn.get(namespace);
      if (!missing) {
        const inNamespace = policies.policies(namespace);
        missing = (['Ingress', 'Egress'] as const).filter(
          (direction) => !hasDefaultDeny(inNamespace, direction),
        );
        missingIn.set(namespace, missing);
      }
      if (missing.length === 0) continue;
      reported.add(namespace);
      yield atWorkload(
        workload,
        [],
        `namespace ${namespace} has no default-deny NetworkPolicy for ${missing.join(' and ')}`,
      );
    }
  },
};

export const podCoverage: Rule = {
  id: 'netpol.pod-coverage',
  title: 'Every pod is selected by an ingress and an egress NetworkPolicy',
  severity: 'medium',
  family: 'network',
  rationale:
    'A pod no policy selects is not isolated in that direction, whatever the other pods’ policies say.',
  remediation:
    'Make sure a NetworkPolicy (a default deny, or one for the app) selects the pod for Ingress and for Egress.',
  mapping: {
    pci: { '1.2.1': 'direct', '1.3.1': 'direct', '1.3.2': 'direct' },
    guidance: { '4.1': 'direct' },
  },
  examples: {
    good: [k8s(`${shopPod}${netpol('default-deny', '[Ingress, Egress]')}`)],
    bad: [k8s(`${shopPod}${netpol('ingress-only', '[Ingress]')}`)],
  },
  *check({ workloads, resources }) {
    const policies = namespaceIndex(resources);
    // Directions covered in a namespace by policies with an empty selector, which select every pod: when
    // they cover both, no other policy of the namespace needs evaluating against each pod.
    const coveredByAll = new Map<string, Set<string>>();
    for (const workload of workloads) {
      if (workload.resource.origin !== 'kubernetes') continue;
      const namespace = namespaceOf(workload.resource);
      const inNamespace = policies.policies(namespace);
      let covered = coveredByAll.get(namespace);
      if (!covered) {
        covered = new Set(
          inNamespace
            .filter((policy) => isEmptySelector(asObject(policy.body['spec'])['podSelector']))
            .flatMap(policyTypes),
        );
        coveredByAll.set(namespace, covered);
      }
      if (covered.has('Ingress') && covered.has('Egress')) continue;
      const selecting = inNamespace.filter((policy) =>
        selects(asObject(policy.body['spec'])['podSelector'], workload.podLabels),
      );
      const missing = ['Ingress', 'Egress'].filter(
        (direction) => !selecting.some((policy) => policyTypes(policy).includes(direction)),
      );
      if (missing.length > 0)
        yield atWorkload(workload, [], `no NetworkPolicy selects the pod for ${missing.join(' and ')}`);
    }
  },
};

function servicePointsAt(service: Resource, workload: Workload): boolean {
  if (namespaceOf(service) !== namespaceOf(workload.resource)) return false;
  const selector = asObject(asObject(service.body['spec'])['selector']);
  if (Object.keys(selector).length === 0) return false;
  return selects({ matchLabels: selector }, workload.podLabels);
}

const cdeService = (type: string) =>
  k8s(`apiVersion: apps/v1
kind: Deployment
metadata: {name: vault, namespace: cde}
spec:
  selector: {matchLabels: {app: vault}}
  template:
    metadata: {labels: {app: vault, cardhold.dev/cde: "true"}}
    spec: {containers: [{name: vault, image: "vault:1.0"}]}
---
apiVersion: v1
kind: Service
metadata: {name: vault, namespace: cde}
spec: {type: ${type}, selector: {app: vault}, ports: [{port: 8443}]}
`);

export const cdeExposure: Rule = {
  id: 'cde.exposure',
  title: 'CDE workloads are not exposed through NodePort, LoadBalancer, externalIPs or hostPort',
  severity: 'high',
  family: 'cde-segmentation',
  rationale:
    'Node ports, cloud load balancers and external IPs put the CDE on networks outside its controlled ingress path.',
  remediation:
    'Expose CDE workloads only as ClusterIP Services behind the controlled ingress path; remove hostPort.',
  mapping: {
    pci: { '1.3.1': 'direct', '1.4.1': 'direct', '1.2.1': 'supporting' },
    guidance: { '4.1': 'direct', '16.1': 'supporting' },
  },
  examples: { good: [cdeService('ClusterIP')], bad: [cdeService('NodePort'), cdeService('LoadBalancer')] },
  *check({ workloads, resources, config }) {
    const cde = cdeNamespaces(resources, config);
    const cdeWorkloads = workloads.filter(
      (w) => w.resource.origin === 'kubernetes' && isCdeWorkload(w, cde, config),
    );
    const cdeWorkloadsIn = new Map<string, Workload[]>();
    for (const workload of cdeWorkloads) {
      const list = cdeWorkloadsIn.get(namespaceOf(workload.resource));
      if (list) list.push(workload);
      else cdeWorkloadsIn.set(namespaceOf(workload.resource), [workload]);
    }
    for (const service of resources) {
      if (service.kind !== 'Service') continue;
      const spec = asObject(service.body['spec']);
      const type = asString(spec['type']) ?? 'ClusterIP';
      const external = asArray(spec['externalIPs']).length > 0;
      if (type !== 'NodePort' && type !== 'LoadBalancer' && !external) continue;
      const target = cdeWorkloadsIn.get(namespaceOf(service))?.find((w) => servicePointsAt(service, w));
      if (!target && !cde.has(namespaceOf(service))) continue;
      yield atResource(
        service,
        external ? ['spec', 'externalIPs'] : ['spec', 'type'],
        `Service ${service.name} exposes CDE workload${target ? ` ${target.resource.name}` : 's'} as ${external ? 'externalIPs' : type}`,
      );
    }
    for (const { workload, container } of eachContainer(cdeWorkloads)) {
      for (const { index, hostPort } of hostPortsOf(container)) {
        yield atContainer(
          workload,
          container,
          ['ports', index, 'hostPort'],
          `CDE container ${container.name} binds host port ${hostPort}`,
        );
      }
    }
  },
};

export const ingressTls: Rule = {
  id: 'k8s.ingress-tls',
  title: 'Ingresses terminate TLS',
  severity: 'medium',
  family: 'network',
  rationale: 'An Ingress without TLS serves plain HTTP: credentials and data cross the network readable.',
  remediation: 'Add spec.tls with a certificate for every host of the Ingress.',
  mapping: { pci: { '4.2.1': 'direct', '2.2.7': 'supporting' }, guidance: { '4.3': 'supporting' } },
  examples: {
    good: [
      k8s(
        `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: shop}\nspec:\n  tls: [{hosts: [shop.example.com], secretName: shop-tls}]\n  rules: [{host: shop.example.com}]\n`,
      ),
    ],
    bad: [
      k8s(
        `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: shop}\nspec:\n  rules: [{host: shop.example.com}]\n`,
      ),
    ],
  },
  *check({ resources }) {
    for (const resource of resources) {
      if (resource.kind !== 'Ingress') continue;
      const spec = asObject(resource.body['spec']);
      const tls = asArray(spec['tls']);
      if (tls.length === 0) {
        yield atResource(resource, ['spec'], `Ingress ${resource.name} has no TLS`);
        continue;
      }
      const covered = new Set(tls.flatMap((entry) => asArray(asObject(entry)['hosts']).map(String)));
      const rules = asArray(spec['rules']);
      for (let index = 0; index < rules.length; index++) {
        const host = asString(asObject(rules[index])['host']);
        if (host && !covered.has(host))
          yield atResource(
            resource,
            ['spec', 'rules', index, 'host'],
            `Ingress ${resource.name} serves ${host} without TLS`,
          );
      }
    }
  },
};

function serviceNetworks(raw: Record<string, Json>): string[] {
  const networks = raw['networks'];
  if (Array.isArray(networks)) return networks.map(String);
  const names = Object.keys(asObject(networks));
  return names.length > 0 ? names : ['default'];
}

export const composeCdeInternal: Rule = {
  id: 'compose.cde-internal-network',
  title: 'CDE services sit only on internal networks',
  severity: 'high',
  family: 'cde-segmentation',
  rationale:
    'A Compose network that is not internal routes to the outside world; the CDE must only reach what is allowed.',
  remediation:
    'Attach CDE services only to networks declared with internal: true; route outbound traffic through an allow-listed proxy.',
  mapping: {
    pci: { '1.3.1': 'direct', '1.3.2': 'direct', '1.2.1': 'supporting' },
    guidance: { '4.1': 'direct', '16.1': 'direct' },
  },
  examples: {
    good: [
      compose(
        `services:\n  vault:\n    image: vault:1.0\n    labels: {cardhold.dev/cde: "true"}\n    networks: [cde]\nnetworks:\n  cde: {internal: true}\n`,
      ),
    ],
    bad: [
      compose(`services:\n  vault:\n    image: vault:1.0\n    labels: {cardhold.dev/cde: "true"}\n`),
      compose(
        `services:\n  vault:\n    image: vault:1.0\n    labels: [cardhold.dev/cde=true]\n    networks: [cde, public]\nnetworks:\n  cde: {internal: true}\n  public: {}\n`,
      ),
    ],
  },
  *check({ composeServices, config }) {
    for (const service of composeServices) {
      if (!isCdeLabelled(service.resource.labels, config)) continue;
      for (const network of serviceNetworks(service.raw)) {
        if (asObject(service.networks[network])['internal'] === true) continue;
        if (service.raw['network_mode'] !== undefined) continue;
        yield atWorkload(
          service.workload,
          ['networks'],
          `CDE service ${service.resource.name} is on network ${network}, which is not internal`,
        );
      }
    }
  },
};

function publishedOnAllInterfaces(port: Json): boolean {
  if (typeof port === 'number') return false; // container port only: not published
  if (typeof port === 'string') {
    const parts = port.split(':');
    if (parts.length === 1) return false;
    if (parts.length === 2) return true;
    return parts[0] === '0.0.0.0' || parts[0] === '' || parts[0] === '::' || parts[0] === '[::]';
  }
  const spec = asObject(port);
  if (spec['published'] === undefined) return false;
  const host = asString(spec['host_ip']);
  return host === undefined || host === '0.0.0.0' || host === '::';
}

export const composePorts: Rule = {
  id: 'compose.ports-all-interfaces',
  title: 'Published ports bind a specific host address',
  severity: 'medium',
  family: 'network',
  rationale:
    'A port published without an address listens on every interface of the host, public ones included, and bypasses host firewalls.',
  remediation:
    'Publish as "127.0.0.1:8080:80" (or a specific interface), or do not publish and use the internal network.',
  mapping: { pci: { '1.3.1': 'direct', '1.4.1': 'supporting' }, guidance: { '4.1': 'direct' } },
  examples: {
    good: [compose(`services:\n  web:\n    image: nginx:1.27\n    ports: ["127.0.0.1:8080:80"]\n`)],
    bad: [compose(`services:\n  web:\n    image: nginx:1.27\n    ports: ["8080:80"]\n`)],
  },
  *check({ composeServices }) {
    for (const service of composeServices) {
      const ports = asArray(service.raw['ports']);
      for (let index = 0; index < ports.length; index++) {
        if (publishedOnAllInterfaces(ports[index] as Json)) {
          yield {
            ...atWorkload(
              service.workload,
              [],
              `service ${service.resource.name} publishes ${JSON.stringify(ports[index])} on all interfaces`,
            ),
            path: ['services', service.resource.name, 'ports', index],
          };
        }
      }
    }
  },
};

export const composePids: Rule = {
  id: 'compose.pids-limit',
  title: 'Services limit their number of processes',
  severity: 'low',
  family: 'resources',
  rationale: 'Without a pids limit a fork bomb in one container exhausts the host’s process table.',
  remediation: 'Set pids_limit (or deploy.resources.limits.pids).',
  mapping: { pci: { '2.2.1': 'supporting' }, guidance: { '11.1': 'direct' } },
  examples: {
    good: [compose(`services:\n  web:\n    image: nginx:1.27\n    pids_limit: 200\n`)],
    bad: [compose(`services:\n  web:\n    image: nginx:1.27\n`)],
  },
  *check({ composeServices }) {
    for (const service of composeServices) {
      const limits = asObject(asObject(service.workload.containers[0]?.spec['resources'])['limits']);
      if (limits['pids'] === undefined)
        yield atWorkload(service.workload, [], `service ${service.resource.name} sets no pids limit`);
    }
  },
};

export const networkRules: Rule[] = [
  defaultDeny,
  podCoverage,
  cdeExposure,
  ingressTls,
  composeCdeInternal,
  composePorts,
  composePids,
];
