import { asArray, asObject, asString } from '../types.ts';
import { cdeNamespaces, isCdeWorkload } from './cde.ts';
import { eachContainer } from './pss-baseline.ts';
import { pod } from './pss-examples.ts';
import { atContainer, atWorkload, compose, describeContainer, k8s, type Rule } from './rule.ts';

/** Workload rules beyond the Pod Security Standards: resources, service account tokens, probes, host mounts. */

const limitsContainer = (resources: string) =>
  `{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n    resources: ${resources}`;

export const resourceLimits: Rule = {
  id: 'workload.resource-limits',
  title: 'Containers set CPU and memory limits',
  severity: 'medium',
  family: 'resources',
  rationale:
    'Without limits one compromised or runaway container can starve every other workload on the node.',
  remediation:
    'Set resources.limits.cpu and resources.limits.memory (Compose: deploy.resources.limits or mem_limit/cpus).',
  mapping: { pci: { '2.2.1': 'supporting' }, guidance: { '11.1': 'direct' } },
  examples: {
    good: [
      pod({
        container: limitsContainer(
          '{limits: {cpu: 500m, memory: 256Mi}, requests: {cpu: 100m, memory: 128Mi}}',
        ),
      }),
      compose(
        `services:\n  web:\n    image: nginx:1.27\n    deploy: {resources: {limits: {cpus: "0.5", memory: 256M}}}\n`,
      ),
    ],
    bad: [pod({}), compose(`services:\n  web:\n    image: nginx:1.27\n`)],
  },
  *check({ workloads }) {
    for (const { workload, container } of eachContainer(workloads)) {
      if (container.type === 'ephemeralContainers') continue; // ephemeral containers cannot set resources
      const limits = asObject(asObject(container.spec['resources'])['limits']);
      const missing = ['cpu', 'memory'].filter((resource) => limits[resource] === undefined);
      if (missing.length > 0) {
        yield atContainer(
          workload,
          container,
          ['resources'],
          `${describeContainer(container)} has no ${missing.join(' or ')} limit`,
        );
      }
    }
  },
};

export const resourceRequests: Rule = {
  id: 'workload.resource-requests',
  title: 'Containers set CPU and memory requests',
  severity: 'low',
  family: 'resources',
  rationale:
    'Requests let the scheduler place pods where their resources exist, so that limits are not the only guard.',
  remediation: 'Set resources.requests.cpu and resources.requests.memory.',
  mapping: { pci: { '2.2.1': 'supporting' }, guidance: { '11.1': 'supporting' } },
  examples: {
    good: [pod({ container: limitsContainer('{requests: {cpu: 100m, memory: 128Mi}}') })],
    bad: [pod({ container: limitsContainer('{limits: {cpu: 100m}}') })],
  },
  *check({ workloads }) {
    for (const { workload, container } of eachContainer(workloads)) {
      if (workload.resource.origin === 'compose' || container.type === 'ephemeralContainers') continue;
      const requests = asObject(asObject(container.spec['resources'])['requests']);
      const missing = ['cpu', 'memory'].filter((resource) => requests[resource] === undefined);
      if (missing.length > 0) {
        yield atContainer(
          workload,
          container,
          ['resources'],
          `${describeContainer(container)} has no ${missing.join(' or ')} request`,
        );
      }
    }
  },
};

export const readOnlyRoot: Rule = {
  id: 'workload.read-only-root',
  title: 'Root filesystems are read-only',
  severity: 'medium',
  family: 'workload-hardening',
  rationale:
    'A writable root filesystem lets an intruder add binaries and persist changes that drift detection must then find.',
  remediation:
    'Set readOnlyRootFilesystem: true (Compose: read_only: true) and mount emptyDir/tmpfs where the process writes.',
  mapping: {
    pci: { '2.2.1': 'supporting', '11.5.2': 'supporting' },
    guidance: { '8.2': 'direct', '3.1': 'supporting' },
  },
  examples: {
    good: [
      pod({
        container:
          '{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}',
      }),
      compose(`services:\n  web:\n    image: nginx:1.27\n    read_only: true\n`),
    ],
    bad: [pod({}), compose(`services:\n  web:\n    image: nginx:1.27\n`)],
  },
  *check({ workloads }) {
    for (const { workload, container, context } of eachContainer(workloads)) {
      if (container.type === 'ephemeralContainers' || context.readOnlyRootFilesystem.value === true) continue;
      yield atContainer(
        workload,
        container,
        ['securityContext', 'readOnlyRootFilesystem'],
        `${describeContainer(container)} has a writable root filesystem`,
      );
    }
  },
};

const runtimeSockets =
  /(docker|containerd|crio|cri-dockerd|podman)\.sock$|^\/var\/run\/docker$|^\/run\/containerd$/;
const sensitiveHostPaths = [
  '/',
  '/etc',
  '/proc',
  '/sys',
  '/dev',
  '/root',
  '/boot',
  '/var/run',
  '/run',
  '/var/lib/kubelet',
  '/var/lib/docker',
  '/var/log',
  '/home',
];

function hostPaths(podSpec: Record<string, unknown>): { index: number; path: string }[] {
  return asArray(podSpec['volumes'])
    .map((volume, index) => ({ index, path: asString(asObject(asObject(volume)['hostPath'])['path']) }))
    .filter((entry): entry is { index: number; path: string } => entry.path !== undefined);
}

export const runtimeSocket: Rule = {
  id: 'workload.runtime-socket',
  title: 'The container runtime socket is not mounted',
  severity: 'critical',
  family: 'workload-hardening',
  rationale:
    'Whoever reaches the runtime socket can start privileged containers on the node: full node takeover.',
  remediation:
    'Remove the mount of docker.sock/containerd.sock/crio.sock; use a dedicated, audited build or metrics service.',
  mapping: { pci: { '2.2.1': 'direct', '7.2.1': 'supporting' }, guidance: { '3.1': 'direct' } },
  examples: {
    good: [compose(`services:\n  web:\n    image: nginx:1.27\n    volumes: [data:/data]\n`)],
    bad: [
      compose(
        `services:\n  agent:\n    image: agent:1.0\n    volumes: [/var/run/docker.sock:/var/run/docker.sock]\n`,
      ),
      pod({ spec: '  volumes: [{name: sock, hostPath: {path: /run/containerd/containerd.sock}}]' }),
    ],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      for (const { index, path } of hostPaths(workload.podSpec)) {
        if (runtimeSockets.test(path.replace(/\/$/, '')))
          yield atWorkload(
            workload,
            ['volumes', index, 'hostPath'],
            `mounts the container runtime socket ${path}`,
          );
      }
    }
  },
};

export const sensitiveHostPath: Rule = {
  id: 'workload.sensitive-host-path',
  title: 'No sensitive host directories are mounted',
  severity: 'high',
  family: 'workload-hardening',
  rationale:
    "The node's /, /etc, /proc, /sys, /var/lib/kubelet and similar hold credentials and control the node.",
  remediation: 'Remove the host mount; use a volume type that does not reach into the node.',
  mapping: { pci: { '2.2.1': 'direct' }, guidance: { '3.1': 'direct' } },
  examples: {
    good: [
      compose(`services:\n  web:\n    image: nginx:1.27\n    volumes: [./site:/usr/share/nginx/html:ro]\n`),
    ],
    bad: [compose(`services:\n  web:\n    image: nginx:1.27\n    volumes: [/etc:/host/etc]\n`)],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      for (const { index, path } of hostPaths(workload.podSpec)) {
        const normalized = path.length > 1 ? path.replace(/\/+$/, '') : path;
        if (
          sensitiveHostPaths.some(
            (root) =>
              normalized === root ||
              (root !== '/' && normalized.startsWith(`${root}/`) && !runtimeSockets.test(normalized)),
          )
        ) {
          yield atWorkload(workload, ['volumes', index, 'hostPath'], `mounts sensitive host path ${path}`);
        }
      }
    }
  },
};

const deployment = (podSpecExtra: string, labels = '{app.kubernetes.io/name: web}') =>
  k8s(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: ${labels}}
    spec:
${podSpecExtra}      containers:
      - {name: app, image: "registry.example.com/web:1.0"}
`);

export const automountToken: Rule = {
  id: 'k8s.sa-token-automount',
  title: 'Service account tokens are not mounted unless needed',
  severity: 'medium',
  family: 'service-accounts',
  rationale: 'An automatically mounted token gives any code in the pod the service account’s API rights.',
  remediation:
    'Set automountServiceAccountToken: false on the pod (or on its ServiceAccount) unless the workload calls the API.',
  mapping: {
    pci: { '7.2.1': 'supporting', '7.2.2': 'supporting', '8.6.1': 'supporting' },
    guidance: { '1.5': 'direct' },
  },
  examples: { good: [deployment('      automountServiceAccountToken: false\n')], bad: [deployment('')] },
  *check({ workloads, resources }) {
    const accountsOff = new Set(
      resources
        .filter((r) => r.kind === 'ServiceAccount' && r.body['automountServiceAccountToken'] === false)
        .map((r) => `${r.namespace ?? 'default'}/${r.name}`),
    );
    for (const workload of workloads) {
      if (workload.resource.origin !== 'kubernetes') continue;
      const value = workload.podSpec['automountServiceAccountToken'];
      if (value === false) continue;
      const account = asString(workload.podSpec['serviceAccountName']) ?? 'default';
      if (value === undefined && accountsOff.has(`${workload.resource.namespace ?? 'default'}/${account}`))
        continue;
      yield atWorkload(
        workload,
        value === true ? ['automountServiceAccountToken'] : [],
        'the pod mounts a service account token automatically',
      );
    }
  },
};

export const defaultServiceAccount: Rule = {
  id: 'k8s.default-service-account',
  title: 'Workloads use their own service account',
  severity: 'low',
  family: 'service-accounts',
  rationale:
    'The default service account is shared by every pod in the namespace: rights granted to it leak to all.',
  remediation: 'Create a ServiceAccount per workload and set serviceAccountName.',
  mapping: {
    pci: { '7.2.2': 'supporting', '8.2.2': 'supporting' },
    guidance: { '1.5': 'direct', '1.2': 'supporting' },
  },
  examples: { good: [deployment('      serviceAccountName: web\n')], bad: [deployment('')] },
  *check({ workloads }) {
    for (const workload of workloads) {
      if (workload.resource.origin !== 'kubernetes') continue;
      const account =
        asString(workload.podSpec['serviceAccountName']) ?? asString(workload.podSpec['serviceAccount']);
      if (account === undefined || account === 'default') {
        yield atWorkload(
          workload,
          account ? ['serviceAccountName'] : [],
          'the pod runs as the default service account',
        );
      }
    }
  },
};

export const probes: Rule = {
  id: 'workload.probes',
  title: 'Containers have readiness and liveness probes',
  severity: 'low',
  family: 'availability',
  rationale: 'Without probes, broken or hijacked replicas keep receiving traffic and are never restarted.',
  remediation: 'Add readinessProbe and livenessProbe (Compose: healthcheck).',
  mapping: {
    none: 'availability hygiene; no PCI DSS requirement or container guidance area asks for probes',
  },
  examples: {
    good: [
      pod({
        container:
          '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n    readinessProbe: {httpGet: {path: /readyz, port: 8080}}\n    livenessProbe: {httpGet: {path: /livez, port: 8080}}',
      }),
      compose(
        `services:\n  web:\n    image: nginx:1.27\n    healthcheck: {test: [CMD, curl, -f, http://localhost/]}\n`,
      ),
    ],
    bad: [pod({}), compose(`services:\n  web:\n    image: nginx:1.27\n`)],
  },
  *check({ workloads }) {
    for (const { workload, container } of eachContainer(workloads)) {
      if (container.type !== 'containers') continue;
      const missing = ['readinessProbe', 'livenessProbe'].filter(
        (probe) => container.spec[probe] === undefined,
      );
      if (workload.resource.kind === 'Job' || workload.resource.kind === 'CronJob') continue;
      if (missing.length > 0)
        yield atContainer(
          workload,
          container,
          [],
          `${describeContainer(container)} has no ${missing.join(' or ')}`,
        );
    }
  },
};

export const runtimeClass: Rule = {
  id: 'cde.runtime-class',
  title: 'CDE workloads run in a sandboxed runtime class',
  severity: 'medium',
  family: 'cde-segmentation',
  rationale:
    'Containers share the node kernel; a hypervisor or user-space kernel runtime isolates high-risk workloads further.',
  remediation:
    'Set runtimeClassName (for example gvisor or kata) on CDE workloads, or turn the check off with cde.requireRuntimeClass: false.',
  mapping: { pci: { '2.2.3': 'supporting', '2.2.1': 'supporting' }, guidance: { '9.1': 'direct' } },
  examples: {
    good: [
      deployment(
        '      runtimeClassName: gvisor\n',
        '{app.kubernetes.io/name: vault, cardhold.dev/cde: "true"}',
      ),
    ],
    bad: [deployment('', '{app.kubernetes.io/name: vault, cardhold.dev/cde: "true"}')],
  },
  *check({ workloads, resources, config }) {
    if (!config.cde.requireRuntimeClass) return;
    const cde = cdeNamespaces(resources, config);
    for (const workload of workloads) {
      if (workload.resource.origin !== 'kubernetes' || !isCdeWorkload(workload, cde, config)) continue;
      const name = asString(workload.podSpec['runtimeClassName']);
      if (name === undefined) yield atWorkload(workload, [], 'the CDE workload sets no runtimeClassName');
      else if (config.cde.runtimeClasses.length > 0 && !config.cde.runtimeClasses.includes(name)) {
        yield atWorkload(
          workload,
          ['runtimeClassName'],
          `the CDE workload uses runtime class ${name}, not one of ${config.cde.runtimeClasses.join(', ')}`,
        );
      }
    }
  },
};

export const workloadRules: Rule[] = [
  resourceLimits,
  resourceRequests,
  readOnlyRoot,
  runtimeSocket,
  sensitiveHostPath,
  automountToken,
  defaultServiceAccount,
  probes,
  runtimeClass,
];
