import type { ContainerRef, Workload } from '../model.ts';
import { type EffectiveSecurityContext, effectiveSecurityContext } from '../security-context.ts';
import { asArray, asObject, asString, type Json } from '../types.ts';
import { pod } from './pss-examples.ts';
import {
  atContainer,
  atPodMetadata,
  atWorkload,
  describeContainer,
  type Rule,
  type RuleMapping,
} from './rule.ts';

/**
 * Pod Security Standards, baseline level (Kubernetes v1.37 semantics, the checks of the Pod Security
 * Admission controller). Each check is its own rule so that a waiver can name exactly one of them.
 */
const workloadMapping: RuleMapping = {
  pci: { '2.2.1': 'direct', '2.2.5': 'supporting' },
  guidance: { '3.1': 'direct', '9.1': 'supporting', '15.1': 'supporting' },
};

export interface ContainerEntry {
  workload: Workload;
  container: ContainerRef;
  context: EffectiveSecurityContext;
}

/**
 * Every container of a workload with its effective security context, resolved once per workload and kept
 * for the other rules: a third of the rules walk every container.
 */
const containerEntries = new WeakMap<Workload, ContainerEntry[]>();

function entriesOf(workload: Workload): ContainerEntry[] {
  let entries = containerEntries.get(workload);
  if (!entries) {
    entries = workload.containers.map((container) => ({
      workload,
      container,
      context: effectiveSecurityContext(workload.podSpec, container),
    }));
    containerEntries.set(workload, entries);
  }
  return entries;
}

/** Every container of the workloads, as a list (rules iterate it; no generator step per container). */
export function eachContainer(workloads: readonly Workload[]): readonly ContainerEntry[] {
  return workloads.flatMap(entriesOf);
}

/** A container's host ports (non-zero `hostPort`), each with its index in `ports` for the finding's path. */
export function hostPortsOf(container: {
  spec: Record<string, Json>;
}): { index: number; hostPort: number }[] {
  const found: { index: number; hostPort: number }[] = [];
  const ports = asArray(container.spec['ports']);
  for (let index = 0; index < ports.length; index++) {
    const hostPort = asObject(ports[index])['hostPort'];
    if (typeof hostPort === 'number' && hostPort !== 0) found.push({ index, hostPort });
  }
  return found;
}

export const baselineCapabilities = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

const safeSysctls = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
  'net.ipv4.tcp_slow_start_after_idle',
  'net.ipv4.tcp_notsent_lowat',
]);

const allowedSeLinuxTypes = new Set([
  '',
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);

export const hostProcess: Rule = {
  id: 'pss.baseline.host-process',
  title: 'Windows HostProcess containers are not allowed',
  severity: 'critical',
  family: 'pod-security-baseline',
  rationale: 'A HostProcess container runs directly on the Windows node with host access: no isolation.',
  remediation: 'Remove `windowsOptions.hostProcess: true` from the pod and its containers.',
  mapping: workloadMapping,
  examples: {
    good: [pod({})],
    bad: [pod({ podSecurity: '{windowsOptions: {hostProcess: true}}', spec: '  hostNetwork: true' })],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      const podValue = asObject(asObject(workload.podSpec['securityContext'])['windowsOptions'])[
        'hostProcess'
      ];
      if (podValue === true) {
        yield atWorkload(
          workload,
          ['securityContext', 'windowsOptions', 'hostProcess'],
          'the pod sets hostProcess',
        );
      }
    }
    for (const { workload, container } of eachContainer(workloads)) {
      const value = asObject(asObject(container.spec['securityContext'])['windowsOptions'])['hostProcess'];
      if (value === true) {
        yield atContainer(
          workload,
          container,
          ['securityContext', 'windowsOptions', 'hostProcess'],
          `${describeContainer(container)} sets hostProcess`,
        );
      }
    }
  },
};

export const hostNamespaces: Rule = {
  id: 'pss.baseline.host-namespaces',
  title: "Pods do not share the host's network, PID or IPC namespace",
  severity: 'high',
  family: 'pod-security-baseline',
  rationale: "Sharing the node's namespaces exposes its network traffic, processes and shared memory.",
  remediation: 'Remove hostNetwork, hostPID and hostIPC (or set them to false).',
  mapping: {
    pci: { '2.2.1': 'direct', '1.3.1': 'supporting' },
    guidance: { '3.1': 'direct', '4.1': 'supporting' },
  },
  examples: {
    good: [pod({})],
    bad: [pod({ spec: '  hostNetwork: true' }), pod({ spec: '  hostPID: true' })],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) {
        if (workload.podSpec[field] === true)
          yield atWorkload(workload, [field], `the pod sets ${field}: true`);
      }
    }
  },
};

export const privileged: Rule = {
  id: 'pss.baseline.privileged',
  title: 'Containers are not privileged',
  severity: 'critical',
  family: 'pod-security-baseline',
  rationale: 'A privileged container has every capability and the host devices: it can take over the node.',
  remediation: 'Remove `securityContext.privileged: true`; grant only the capabilities the process needs.',
  mapping: workloadMapping,
  examples: {
    good: [pod({})],
    bad: [
      pod({ container: '{privileged: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}' }),
    ],
  },
  *check({ workloads }) {
    for (const { workload, container, context } of eachContainer(workloads)) {
      if (context.privileged.value === true) {
        yield atContainer(
          workload,
          container,
          ['securityContext', 'privileged'],
          `${describeContainer(container)} is privileged`,
        );
      }
    }
  },
};

export const baselineCaps: Rule = {
  id: 'pss.baseline.capabilities',
  title: 'Containers add no capability beyond the baseline set',
  severity: 'high',
  family: 'pod-security-baseline',
  rationale:
    'Capabilities such as SYS_ADMIN, NET_ADMIN or NET_RAW allow escaping or attacking the node network.',
  remediation: `Add only capabilities from the baseline set (${[...baselineCapabilities].join(', ')}), preferably none.`,
  mapping: workloadMapping,
  examples: {
    good: [
      pod({
        container: '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}',
      }),
    ],
    bad: [pod({ container: '{allowPrivilegeEscalation: false, capabilities: {add: [SYS_ADMIN]}}' })],
  },
  *check({ workloads }) {
    for (const { workload, container, context } of eachContainer(workloads)) {
      const added = asArray(asObject(context.capabilities.value)['add']);
      for (let index = 0; index < added.length; index++) {
        const capability = added[index];
        if (typeof capability === 'string' && baselineCapabilities.has(capability)) continue;
        yield atContainer(
          workload,
          container,
          ['securityContext', 'capabilities', 'add', index],
          `${describeContainer(container)} adds capability ${String(capability)}`,
        );
      }
    }
  },
};

export const hostPathVolumes: Rule = {
  id: 'pss.baseline.host-path',
  title: 'No hostPath volumes',
  severity: 'high',
  family: 'pod-security-baseline',
  rationale:
    "A hostPath volume reaches the node's filesystem: its credentials, the runtime socket, other pods' data.",
  remediation: 'Use emptyDir, configMap, secret, projected or persistent volumes instead of hostPath.',
  mapping: { pci: { '2.2.1': 'direct' }, guidance: { '3.1': 'direct' } },
  examples: {
    good: [pod({ spec: '  volumes: [{name: tmp, emptyDir: {}}]' })],
    bad: [pod({ spec: '  volumes: [{name: host, hostPath: {path: /etc}}]' })],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      const volumes = asArray(workload.podSpec['volumes']);
      for (let index = 0; index < volumes.length; index++) {
        const volume = asObject(volumes[index]);
        if (volume['hostPath'] !== undefined) {
          const path = asString(asObject(volume['hostPath'])['path']) ?? '?';
          yield atWorkload(
            workload,
            ['volumes', index, 'hostPath'],
            `volume "${String(volume['name'])}" mounts host path ${path}`,
          );
        }
      }
    }
  },
};

export const hostPorts: Rule = {
  id: 'pss.baseline.host-ports',
  title: 'Containers do not bind host ports',
  severity: 'medium',
  family: 'pod-security-baseline',
  rationale:
    'A hostPort publishes the container on the node address, bypassing Services and NetworkPolicy intent.',
  remediation: 'Remove hostPort; expose the pod through a Service.',
  mapping: {
    pci: { '1.3.1': 'supporting', '2.2.1': 'direct' },
    guidance: { '3.1': 'direct', '4.1': 'supporting' },
  },
  examples: {
    good: [pod({ spec: '' })],
    bad: [
      pod({
        container:
          '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n    ports: [{containerPort: 8080, hostPort: 8080}]',
      }),
    ],
  },
  *check({ workloads }) {
    for (const { workload, container } of eachContainer(workloads)) {
      for (const { index, hostPort } of hostPortsOf(container)) {
        yield atContainer(
          workload,
          container,
          ['ports', index, 'hostPort'],
          `${describeContainer(container)} binds host port ${hostPort}`,
        );
      }
    }
  },
};

const appArmorAnnotation = 'container.apparmor.security.beta.kubernetes.io/';

function appArmorTypeAllowed(profile: Json | undefined): boolean {
  const type = asObject(profile)['type'];
  return type === undefined || type === 'RuntimeDefault' || type === 'Localhost';
}

export const appArmor: Rule = {
  id: 'pss.baseline.apparmor',
  title: 'AppArmor is not disabled',
  severity: 'high',
  family: 'pod-security-baseline',
  rationale: 'Running unconfined removes the AppArmor profile that limits what a compromised process may do.',
  remediation: 'Use the RuntimeDefault or a Localhost AppArmor profile (or leave it unset).',
  mapping: workloadMapping,
  examples: {
    good: [
      pod({
        container:
          '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, appArmorProfile: {type: RuntimeDefault}}',
      }),
    ],
    bad: [
      pod({
        podSecurity:
          '{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, appArmorProfile: {type: Unconfined}}',
      }),
      pod({ annotations: `{${appArmorAnnotation}app: unconfined}` }),
    ],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      for (const [key, value] of Object.entries(workload.podAnnotations)) {
        if (!key.startsWith(appArmorAnnotation)) continue;
        if (value === '' || value === 'runtime/default' || value.startsWith('localhost/')) continue;
        yield atPodMetadata(
          workload,
          ['annotations', key],
          `annotation ${key} sets AppArmor profile "${value}"`,
        );
      }
      const podProfile = asObject(workload.podSpec['securityContext'])['appArmorProfile'];
      if (!appArmorTypeAllowed(podProfile)) {
        yield atWorkload(
          workload,
          ['securityContext', 'appArmorProfile', 'type'],
          'the pod runs AppArmor unconfined',
        );
      }
      for (const container of workload.containers) {
        const profile = asObject(container.spec['securityContext'])['appArmorProfile'];
        if (!appArmorTypeAllowed(profile)) {
          yield atContainer(
            workload,
            container,
            ['securityContext', 'appArmorProfile', 'type'],
            `${describeContainer(container)} runs AppArmor unconfined`,
          );
        }
      }
    }
  },
};

function seLinuxProblem(options: Json | undefined): string | undefined {
  const value = asObject(options);
  const type = value['type'];
  if (type !== undefined && (typeof type !== 'string' || !allowedSeLinuxTypes.has(type)))
    return `type "${String(type)}"`;
  for (const field of ['user', 'role']) {
    if (value[field] !== undefined && value[field] !== '') return `${field} "${String(value[field])}"`;
  }
  return undefined;
}

export const seLinux: Rule = {
  id: 'pss.baseline.selinux',
  title: 'SELinux options stay within the container types',
  severity: 'high',
  family: 'pod-security-baseline',
  rationale: 'A custom SELinux user, role or type can lift the confinement the container policy gives.',
  remediation:
    'Set only seLinuxOptions.level, or a type of container_t, container_init_t, container_kvm_t or container_engine_t.',
  mapping: workloadMapping,
  examples: {
    good: [
      pod({
        podSecurity:
          '{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, seLinuxOptions: {level: "s0:c123,c456"}}',
      }),
    ],
    bad: [
      pod({
        podSecurity:
          '{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, seLinuxOptions: {type: spc_t}}',
      }),
    ],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      const problem = seLinuxProblem(asObject(workload.podSpec['securityContext'])['seLinuxOptions']);
      if (problem)
        yield atWorkload(workload, ['securityContext', 'seLinuxOptions'], `the pod sets SELinux ${problem}`);
      for (const container of workload.containers) {
        const containerProblem = seLinuxProblem(
          asObject(container.spec['securityContext'])['seLinuxOptions'],
        );
        if (containerProblem) {
          yield atContainer(
            workload,
            container,
            ['securityContext', 'seLinuxOptions'],
            `${describeContainer(container)} sets SELinux ${containerProblem}`,
          );
        }
      }
    }
  },
};

export const procMount: Rule = {
  id: 'pss.baseline.proc-mount',
  title: '/proc is masked unless the pod has its own user namespace',
  severity: 'high',
  family: 'pod-security-baseline',
  rationale: 'An unmasked /proc exposes kernel interfaces that the default mask hides from containers.',
  remediation: 'Leave procMount unset or Default (Unmasked is only acceptable with hostUsers: false).',
  mapping: workloadMapping,
  examples: {
    good: [
      pod({
        container: '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, procMount: Default}',
      }),
    ],
    bad: [
      pod({
        container: '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, procMount: Unmasked}',
      }),
    ],
  },
  *check({ workloads }) {
    for (const { workload, container, context } of eachContainer(workloads)) {
      if (context.procMount.value === undefined || context.procMount.value === 'Default') continue;
      if (workload.podSpec['hostUsers'] === false) continue;
      yield atContainer(
        workload,
        container,
        ['securityContext', 'procMount'],
        `${describeContainer(container)} sets procMount ${String(context.procMount.value)}`,
      );
    }
  },
};

export const seccompBaseline: Rule = {
  id: 'pss.baseline.seccomp',
  title: 'Seccomp is not disabled',
  severity: 'high',
  family: 'pod-security-baseline',
  rationale: 'Unconfined seccomp lets a process call every system call, the main kernel attack surface.',
  remediation: 'Use seccompProfile type RuntimeDefault or Localhost.',
  mapping: workloadMapping,
  examples: {
    good: [pod({})],
    bad: [pod({ podSecurity: '{runAsNonRoot: true, seccompProfile: {type: Unconfined}}' })],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      if (
        asObject(asObject(workload.podSpec['securityContext'])['seccompProfile'])['type'] === 'Unconfined'
      ) {
        yield atWorkload(
          workload,
          ['securityContext', 'seccompProfile', 'type'],
          'the pod runs seccomp Unconfined',
        );
      }
      for (const container of workload.containers) {
        if (
          asObject(asObject(container.spec['securityContext'])['seccompProfile'])['type'] === 'Unconfined'
        ) {
          yield atContainer(
            workload,
            container,
            ['securityContext', 'seccompProfile', 'type'],
            `${describeContainer(container)} runs seccomp Unconfined`,
          );
        }
      }
    }
  },
};

export const sysctls: Rule = {
  id: 'pss.baseline.sysctls',
  title: 'Only namespaced, safe sysctls',
  severity: 'medium',
  family: 'pod-security-baseline',
  rationale: 'Unsafe sysctls change kernel behaviour for every pod on the node.',
  remediation: `Set only the safe sysctls: ${[...safeSysctls].join(', ')}.`,
  mapping: workloadMapping,
  examples: {
    good: [
      pod({
        podSecurity:
          '{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, sysctls: [{name: net.ipv4.tcp_syncookies, value: "1"}]}',
      }),
    ],
    bad: [
      pod({
        podSecurity:
          '{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, sysctls: [{name: kernel.msgmax, value: "65536"}]}',
      }),
    ],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      const list = asArray(asObject(workload.podSpec['securityContext'])['sysctls']);
      for (let index = 0; index < list.length; index++) {
        const name = asString(asObject(list[index])['name']) ?? '';
        if (!safeSysctls.has(name)) {
          yield atWorkload(
            workload,
            ['securityContext', 'sysctls', index, 'name'],
            `the pod sets unsafe sysctl ${name}`,
          );
        }
      }
    }
  },
};

const probeFields = ['livenessProbe', 'readinessProbe', 'startupProbe'];
const lifecycleFields = ['postStart', 'preStop'];

export const probeHost: Rule = {
  id: 'pss.baseline.probe-host',
  title: 'Probes and lifecycle hooks do not target another host',
  severity: 'medium',
  family: 'pod-security-baseline',
  rationale:
    'A probe or hook with a host makes the kubelet send requests to any address: a request-forgery channel.',
  remediation: 'Remove `host` from httpGet and tcpSocket handlers; they then target the pod itself.',
  mapping: workloadMapping,
  examples: {
    good: [
      pod({
        container:
          '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n    readinessProbe: {httpGet: {port: 8080, path: /readyz}}',
      }),
    ],
    bad: [
      pod({
        container:
          '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n    readinessProbe: {httpGet: {host: 169.254.169.254, port: 80}}',
      }),
    ],
  },
  *check({ workloads }) {
    for (const { workload, container } of eachContainer(workloads)) {
      const handlers: { path: (string | number)[]; handler: Json | undefined }[] = [];
      for (const field of probeFields) handlers.push({ path: [field], handler: container.spec[field] });
      for (const field of lifecycleFields) {
        handlers.push({ path: ['lifecycle', field], handler: asObject(container.spec['lifecycle'])[field] });
      }
      for (const { path, handler } of handlers) {
        for (const kind of ['httpGet', 'tcpSocket']) {
          const host = asObject(asObject(handler)[kind])['host'];
          if (host !== undefined && host !== '') {
            yield atContainer(
              workload,
              container,
              [...path, kind, 'host'],
              `${describeContainer(container)} ${path.join('.')} targets host ${String(host)}`,
            );
          }
        }
      }
    }
  },
};

export const baselineRules: Rule[] = [
  hostProcess,
  hostNamespaces,
  privileged,
  baselineCaps,
  hostPathVolumes,
  hostPorts,
  appArmor,
  seLinux,
  procMount,
  seccompBaseline,
  sysctls,
  probeHost,
];
