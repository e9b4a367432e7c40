import { asArray, asObject, asString } from '../types.ts';
import { cdeNamespaces, isCdeLabelled, isCdeWorkload } from './cde.ts';
import { namespaceIndex } from './namespace-index.ts';
import { atResource, atWorkload, k8s, type Rule } from './rule.ts';

/** Namespace admission labels, CDE placement on dedicated nodes, deprecated APIs and required labels. */

const namespace = (labels: string) =>
  k8s(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: ${labels}\n`);

export const psaLabels: Rule = {
  id: 'k8s.namespace-psa',
  title: 'Namespaces enforce a Pod Security level (restricted for the CDE)',
  severity: 'medium',
  family: 'admission',
  rationale: 'Without pod-security.kubernetes.io/enforce, the API server admits any pod into the namespace.',
  remediation:
    'Label the namespace pod-security.kubernetes.io/enforce: restricted (baseline at least outside the CDE).',
  mapping: {
    pci: { '2.2.1': 'direct', '6.5.1': 'supporting' },
    guidance: { '3.1': 'supporting', '15.1': 'direct' },
  },
  examples: {
    good: [namespace('{pod-security.kubernetes.io/enforce: restricted}')],
    bad: [
      namespace('{team: shop}'),
      namespace('{pod-security.kubernetes.io/enforce: privileged}'),
      namespace('{cardhold.dev/cde: "true", pod-security.kubernetes.io/enforce: baseline}'),
    ],
  },
  *check({ resources, config }) {
    for (const resource of resources) {
      if (resource.kind !== 'Namespace') continue;
      const level = resource.labels['pod-security.kubernetes.io/enforce'];
      const cde = isCdeLabelled(resource.labels, config);
      const where = ['metadata', level === undefined ? 'name' : 'labels'];
      if (level === undefined)
        yield atResource(resource, where, `namespace ${resource.name} enforces no Pod Security level`);
      else if (level === 'privileged')
        yield atResource(resource, where, `namespace ${resource.name} enforces the privileged level`);
      else if (cde && level !== 'restricted')
        yield atResource(resource, where, `CDE namespace ${resource.name} enforces ${level}, not restricted`);
    }
  },
};

function tolerates(podSpec: Record<string, unknown>, key: string): boolean {
  return asArray(podSpec['tolerations']).some((toleration) => {
    const value = asObject(toleration);
    return value['key'] === key || (value['key'] === undefined && value['operator'] === 'Exists');
  });
}

function pinnedToPool(podSpec: Record<string, unknown>, key: string): boolean {
  if (Object.hasOwn(asObject(podSpec['nodeSelector']), key)) return true;
  const required = asObject(
    asObject(asObject(podSpec['affinity'])['nodeAffinity'])['requiredDuringSchedulingIgnoredDuringExecution'],
  );
  return asArray(required['nodeSelectorTerms']).some((term) =>
    asArray(asObject(term)['matchExpressions']).some((expression) => asObject(expression)['key'] === key),
  );
}

const cdeDeployment = (spec: string, labels = '{app.kubernetes.io/name: vault, cardhold.dev/cde: "true"}') =>
  k8s(
    `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: vault, namespace: cde}\nspec:\n  selector: {matchLabels: {app: vault}}\n  template:\n    metadata: {labels: ${labels}}\n    spec:\n${spec}      containers: [{name: vault, image: "vault:1.0"}]\n`,
  );
const pool =
  '      nodeSelector: {cardhold.dev/cde: "true"}\n      tolerations: [{key: cardhold.dev/cde, operator: Equal, value: "true", effect: NoSchedule}]\n';

export const dedicatedNodes: Rule = {
  id: 'cde.dedicated-nodes',
  title: 'CDE workloads run on the dedicated CDE node pool',
  severity: 'high',
  family: 'cde-segmentation',
  rationale:
    'CDE pods sharing nodes with other workloads can be reached through a node compromise from outside the CDE.',
  remediation:
    'Select the CDE pool with nodeSelector or required node affinity on the CDE key, and tolerate its taint.',
  mapping: {
    pci: { '1.2.1': 'supporting', '2.2.3': 'direct', '12.5.2': 'supporting' },
    guidance: { '16.2': 'direct', '16.3': 'direct' },
  },
  examples: {
    good: [cdeDeployment(pool)],
    bad: [cdeDeployment(''), cdeDeployment('      nodeSelector: {cardhold.dev/cde: "true"}\n')],
  },
  *check({ workloads, resources, config }) {
    const cde = cdeNamespaces(resources, config);
    for (const workload of workloads) {
      if (workload.resource.origin !== 'kubernetes' || !isCdeWorkload(workload, cde, config)) continue;
      const key = config.cde.taintKey;
      if (!pinnedToPool(workload.podSpec, key))
        yield atWorkload(workload, [], `the CDE workload does not select the ${key} node pool`);
      if (!tolerates(workload.podSpec, key))
        yield atWorkload(workload, [], `the CDE workload does not tolerate the ${key} taint`);
    }
  },
};

export const foreignToleration: Rule = {
  id: 'cde.foreign-toleration',
  title: 'Non-CDE workloads do not tolerate the CDE taint',
  severity: 'high',
  family: 'cde-segmentation',
  rationale:
    'A non-CDE pod that tolerates the CDE taint may be scheduled onto CDE nodes, defeating the split node pool.',
  remediation:
    'Remove the toleration (and any blanket `operator: Exists` toleration) from workloads outside the CDE.',
  mapping: { pci: { '2.2.3': 'direct', '1.2.1': 'supporting' }, guidance: { '16.3': 'direct' } },
  examples: {
    good: [cdeDeployment('', '{app.kubernetes.io/name: web}')],
    bad: [
      cdeDeployment(
        '      tolerations: [{key: cardhold.dev/cde, operator: Exists}]\n',
        '{app.kubernetes.io/name: web}',
      ),
      cdeDeployment('      tolerations: [{operator: Exists}]\n', '{app.kubernetes.io/name: web}'),
    ],
  },
  *check({ workloads, resources, config }) {
    const cde = cdeNamespaces(resources, config);
    for (const workload of workloads) {
      if (workload.resource.origin !== 'kubernetes' || isCdeWorkload(workload, cde, config)) continue;
      if (tolerates(workload.podSpec, config.cde.taintKey))
        yield atWorkload(
          workload,
          ['tolerations'],
          `a non-CDE workload tolerates the ${config.cde.taintKey} taint`,
        );
    }
  },
};

export const cdeNamespaceIsolation: Rule = {
  id: 'cde.namespace-isolation',
  title: 'CDE namespaces are isolated by NetworkPolicy',
  severity: 'critical',
  family: 'cde-segmentation',
  rationale:
    'The CDE must accept traffic only from named sources; a policy allowing any namespace or any source removes the boundary.',
  remediation:
    'Give each CDE namespace a default deny for ingress and egress and allow only named namespaces and pods.',
  mapping: {
    pci: { '1.2.1': 'direct', '1.3.1': 'direct', '1.3.2': 'direct', '12.5.2': 'supporting' },
    guidance: { '16.1': 'direct', '4.1': 'direct' },
  },
  examples: {
    good: [
      k8s(
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: cde, labels: {cardhold.dev/cde: "true"}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: cde}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n`,
      ),
    ],
    bad: [
      k8s(`apiVersion: v1\nkind: Namespace\nmetadata: {name: cde, labels: {cardhold.dev/cde: "true"}}\n`),
      k8s(
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: cde, labels: {cardhold.dev/cde: "true"}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: cde}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open, namespace: cde}\nspec: {podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{namespaceSelector: {}}]}]}\n`,
      ),
    ],
  },
  *check({ resources, workloads, config }) {
    const names = cdeNamespaces(resources, config);
    for (const workload of workloads) {
      if (
        workload.resource.origin === 'kubernetes' &&
        isCdeWorkload(workload, names, config) &&
        workload.resource.namespace
      )
        names.add(workload.resource.namespace);
    }
    const index = namespaceIndex(resources);
    for (const name of names) {
      const policies = index.policies(name);
      const anchor = index.namespaceObject(name) ?? index.firstIn(name);
      if (!anchor) continue;
      const denies = (direction: string) =>
        policies.some((p) => {
          const spec = asObject(p.body['spec']);
          const types = asArray(spec['policyTypes']).map(String);
          return (
            Object.keys(asObject(spec['podSelector'])).length === 0 &&
            types.includes(direction) &&
            asArray(spec[direction.toLowerCase()]).length === 0
          );
        });
      const missing = ['Ingress', 'Egress'].filter((direction) => !denies(direction));
      if (missing.length > 0)
        yield atResource(
          anchor,
          ['metadata', 'name'],
          `CDE namespace ${name} has no default deny for ${missing.join(' and ')}`,
        );
      for (const policy of policies) {
        const ingress = asArray(asObject(policy.body['spec'])['ingress']);
        for (let index = 0; index < ingress.length; index++) {
          const from = asArray(asObject(ingress[index])['from']);
          const open =
            from.length === 0 ||
            from.some((peer) => {
              const value = asObject(peer);
              return (
                (value['namespaceSelector'] !== undefined &&
                  Object.keys(asObject(value['namespaceSelector'])).length === 0 &&
                  value['podSelector'] === undefined) ||
                asString(asObject(value['ipBlock'])['cidr']) === '0.0.0.0/0'
              );
            });
          if (open)
            yield atResource(
              policy,
              ['spec', 'ingress', index],
              `NetworkPolicy ${policy.name} lets any source into CDE namespace ${name}`,
            );
        }
      }
    }
  },
};

/** Group/version → the release that removed it, for the kinds still commonly found in old manifests. */
const removedApis: Record<string, string> = {
  'extensions/v1beta1': '1.22 (1.16 for workloads)',
  'apps/v1beta1': '1.16',
  'apps/v1beta2': '1.16',
  'batch/v1beta1': '1.25',
  'batch/v2alpha1': '1.21',
  'networking.k8s.io/v1beta1': '1.22',
  'policy/v1beta1': '1.25',
  'rbac.authorization.k8s.io/v1beta1': '1.22',
  'rbac.authorization.k8s.io/v1alpha1': '1.22',
  'autoscaling/v2beta1': '1.25',
  'autoscaling/v2beta2': '1.26',
  'admissionregistration.k8s.io/v1beta1': '1.22',
  'apiextensions.k8s.io/v1beta1': '1.22',
  'storage.k8s.io/v1beta1': '1.22 (CSIStorageCapacity: 1.27)',
  'scheduling.k8s.io/v1beta1': '1.22',
  'discovery.k8s.io/v1beta1': '1.25',
  'flowcontrol.apiserver.k8s.io/v1beta2': '1.29',
  'flowcontrol.apiserver.k8s.io/v1beta3': '1.32',
};

export const deprecatedApi: Rule = {
  id: 'k8s.deprecated-api',
  title: 'Objects use served API versions',
  severity: 'medium',
  family: 'patching',
  rationale:
    'Manifests on removed API versions block cluster upgrades, and so keep clusters on unpatched releases.',
  remediation: 'Move the object to its current apiVersion (kubectl convert helps).',
  mapping: {
    pci: { '6.3.3': 'supporting', '12.3.4': 'supporting' },
    guidance: { '10.1': 'direct', '14.1': 'supporting' },
  },
  examples: {
    good: [
      k8s(
        `apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec: {minAvailable: 1, selector: {matchLabels: {app: web}}}\n`,
      ),
    ],
    bad: [
      k8s(
        `apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec: {minAvailable: 1}\n`,
      ),
    ],
  },
  *check({ resources }) {
    for (const resource of resources) {
      const removed = removedApis[resource.apiVersion];
      if (removed)
        yield atResource(
          resource,
          ['apiVersion'],
          `${resource.kind} ${resource.name} uses ${resource.apiVersion}, removed in Kubernetes ${removed}`,
        );
    }
  },
};

export const requiredLabels: Rule = {
  id: 'k8s.required-labels',
  title: 'Workloads carry the required labels',
  severity: 'low',
  family: 'version-management',
  rationale:
    'Labels identify objects semantically, so that inventory, ownership and change review can find them.',
  remediation:
    'Add the labels named in the scanner configuration (by default app.kubernetes.io/name) to the workload and its pods.',
  mapping: { pci: { '6.5.1': 'supporting', '12.5.1': 'supporting' }, guidance: { '14.1': 'direct' } },
  examples: { good: [cdeDeployment(pool)], bad: [cdeDeployment(pool, '{app: vault}')] },
  *check({ workloads, config }) {
    for (const workload of workloads) {
      if (workload.resource.origin !== 'kubernetes') continue;
      const missing = config.requiredLabels.filter(
        (label) => workload.podLabels[label] === undefined && workload.resource.labels[label] === undefined,
      );
      if (missing.length > 0)
        yield atWorkload(
          workload,
          [],
          `${workload.resource.kind} ${workload.resource.name} lacks label ${missing.join(', ')}`,
        );
    }
  },
};

export const clusterConfigRules: Rule[] = [
  psaLabels,
  dedicatedNodes,
  foreignToleration,
  cdeNamespaceIsolation,
  deprecatedApi,
  requiredLabels,
];
