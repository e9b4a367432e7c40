import type { Workload } from '../model.ts';
import { asArray, asObject } from '../types.ts';
import { eachContainer } from './pss-baseline.ts';
import { pod } from './pss-examples.ts';
import { atContainer, atWorkload, describeContainer, type Rule, type RuleMapping } from './rule.ts';

/**
 * Pod Security Standards, restricted level (Kubernetes v1.37): the checks restricted adds to baseline.
 * Linux-only checks are skipped for pods that declare `os.name: windows`, as the admission controller does.
 */
const mapping: RuleMapping = {
  pci: { '2.2.1': 'direct', '2.2.5': 'supporting' },
  guidance: { '3.1': 'direct', '12.3': 'supporting' },
};

function isWindows(workload: Workload): boolean {
  return asObject(workload.podSpec['os'])['name'] === 'windows';
}

const allowedVolumeSources = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'image',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

export const volumeTypes: Rule = {
  id: 'pss.restricted.volume-types',
  title: 'Only restricted volume types',
  severity: 'medium',
  family: 'pod-security-restricted',
  rationale:
    'Network and node volume plugins bypass persistent-volume controls and reach shared storage directly.',
  remediation: `Use only ${[...allowedVolumeSources].join(', ')} volumes; mount other storage through a PersistentVolumeClaim.`,
  mapping,
  examples: {
    good: [pod({ spec: '  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]' })],
    bad: [pod({ spec: '  volumes: [{name: share, nfs: {server: nas, path: /export}}]' })],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      const volumes = asArray(workload.podSpec['volumes']);
      for (let index = 0; index < volumes.length; index++) {
        const volume = asObject(volumes[index]);
        for (const key of Object.keys(volume)) {
          if (key === 'name' || allowedVolumeSources.has(key) || volume[key] === null) continue;
          yield atWorkload(
            workload,
            ['volumes', index, key],
            `volume "${String(volume['name'])}" uses ${key}`,
          );
        }
      }
    }
  },
};

export const privilegeEscalation: Rule = {
  id: 'pss.restricted.privilege-escalation',
  title: 'allowPrivilegeEscalation is false',
  severity: 'high',
  family: 'pod-security-restricted',
  rationale:
    'Unless set to false, setuid binaries and file capabilities can raise a process above its starting privileges.',
  remediation:
    'Set `securityContext.allowPrivilegeEscalation: false` on every container (it cannot be set on the pod).',
  mapping,
  examples: {
    good: [pod({})],
    bad: [
      pod({ container: '{capabilities: {drop: [ALL]}}' }),
      pod({
        podSecurity:
          '{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, allowPrivilegeEscalation: false}',
        container: '{capabilities: {drop: [ALL]}}',
      }),
    ],
  },
  *check({ workloads }) {
    for (const { workload, container, context } of eachContainer(workloads)) {
      if (isWindows(workload) || context.allowPrivilegeEscalation.value === false) continue;
      const detail =
        context.allowPrivilegeEscalation.value === true ? 'sets it to true' : 'does not set it to false';
      yield atContainer(
        workload,
        container,
        ['securityContext', 'allowPrivilegeEscalation'],
        `${describeContainer(container)} allows privilege escalation (${detail})`,
      );
    }
  },
};

export const runAsNonRoot: Rule = {
  id: 'pss.restricted.run-as-non-root',
  title: 'Containers must run as non-root (runAsNonRoot: true)',
  severity: 'high',
  family: 'pod-security-restricted',
  rationale: 'runAsNonRoot makes the kubelet refuse to start a container whose user would be root.',
  remediation:
    'Set `runAsNonRoot: true` on the pod (or on every container) and build the image with a non-root USER.',
  mapping: {
    pci: { '2.2.1': 'direct', '7.2.1': 'supporting' },
    guidance: { '3.1': 'direct', '12.3': 'direct' },
  },
  examples: {
    good: [
      pod({}),
      pod({
        podSecurity: '{seccompProfile: {type: RuntimeDefault}}',
        container: '{runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}',
      }),
    ],
    bad: [
      pod({ podSecurity: '{seccompProfile: {type: RuntimeDefault}}' }),
      pod({
        container: '{runAsNonRoot: false, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}',
      }),
    ],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      const podValue = asObject(workload.podSpec['securityContext'])['runAsNonRoot'];
      if (podValue === false)
        yield atWorkload(workload, ['securityContext', 'runAsNonRoot'], 'the pod sets runAsNonRoot: false');
    }
    for (const { workload, container, context } of eachContainer(workloads)) {
      const value = context.runAsNonRoot;
      if (value.value === true) continue;
      if (value.from === 'pod') continue; // the pod-level false is reported once, above
      const detail =
        value.value === false
          ? 'sets runAsNonRoot: false'
          : 'does not set runAsNonRoot: true (nor does the pod)';
      yield atContainer(
        workload,
        container,
        value.from === 'container' ? ['securityContext', 'runAsNonRoot'] : [],
        `${describeContainer(container)} ${detail}`,
      );
    }
  },
};

export const runAsUser: Rule = {
  id: 'pss.restricted.run-as-user',
  title: 'runAsUser is not 0',
  severity: 'high',
  family: 'pod-security-restricted',
  rationale: 'An explicit UID 0 runs the process as root whatever the image says.',
  remediation: 'Use a non-zero runAsUser, or leave it to the image USER with runAsNonRoot: true.',
  mapping: { pci: { '2.2.1': 'direct' }, guidance: { '3.1': 'direct', '12.3': 'direct' } },
  examples: {
    good: [
      pod({ podSecurity: '{runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}' }),
    ],
    bad: [pod({ podSecurity: '{runAsNonRoot: true, runAsUser: 0, seccompProfile: {type: RuntimeDefault}}' })],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      if (asObject(workload.podSpec['securityContext'])['runAsUser'] === 0) {
        yield atWorkload(workload, ['securityContext', 'runAsUser'], 'the pod sets runAsUser: 0');
      }
      for (const container of workload.containers) {
        if (asObject(container.spec['securityContext'])['runAsUser'] === 0) {
          yield atContainer(
            workload,
            container,
            ['securityContext', 'runAsUser'],
            `${describeContainer(container)} sets runAsUser: 0`,
          );
        }
      }
    }
  },
};

function seccompAllowed(type: unknown): boolean {
  return type === 'RuntimeDefault' || type === 'Localhost';
}

export const seccompRestricted: Rule = {
  id: 'pss.restricted.seccomp',
  title: 'Seccomp profile RuntimeDefault or Localhost is set',
  severity: 'medium',
  family: 'pod-security-restricted',
  rationale:
    "Without an explicit profile some runtimes run containers unconfined; the runtime's default filter is the floor.",
  remediation:
    'Set `securityContext.seccompProfile.type: RuntimeDefault` on the pod (or Localhost with a profile).',
  mapping,
  examples: {
    good: [pod({})],
    bad: [pod({ podSecurity: '{runAsNonRoot: true}' })],
  },
  *check({ workloads }) {
    for (const workload of workloads) {
      if (isWindows(workload)) continue;
      const podType = asObject(asObject(workload.podSpec['securityContext'])['seccompProfile'])['type'];
      if (podType !== undefined && !seccompAllowed(podType)) {
        yield atWorkload(
          workload,
          ['securityContext', 'seccompProfile', 'type'],
          `the pod sets seccomp ${String(podType)}`,
        );
      }
      for (const container of workload.containers) {
        const type = asObject(asObject(container.spec['securityContext'])['seccompProfile'])['type'];
        if (type !== undefined) {
          if (!seccompAllowed(type)) {
            yield atContainer(
              workload,
              container,
              ['securityContext', 'seccompProfile', 'type'],
              `${describeContainer(container)} sets seccomp ${String(type)}`,
            );
          }
        } else if (podType === undefined) {
          yield atContainer(
            workload,
            container,
            [],
            `${describeContainer(container)} has no seccomp profile (nor does the pod)`,
          );
        }
      }
    }
  },
};

export const capabilitiesRestricted: Rule = {
  id: 'pss.restricted.capabilities',
  title: 'Containers drop ALL capabilities and add at most NET_BIND_SERVICE',
  severity: 'medium',
  family: 'pod-security-restricted',
  rationale:
    'The default capability set still allows raw sockets, ownership changes and more than most services need.',
  remediation:
    'Set `capabilities: {drop: [ALL]}` on every container; add only NET_BIND_SERVICE if a port below 1024 is needed.',
  mapping,
  examples: {
    good: [
      pod({
        container: '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}',
      }),
    ],
    bad: [
      pod({ container: '{allowPrivilegeEscalation: false}' }),
      pod({ container: '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL], add: [CHOWN]}}' }),
    ],
  },
  *check({ workloads }) {
    for (const { workload, container, context } of eachContainer(workloads)) {
      if (isWindows(workload)) continue;
      const capabilities = asObject(context.capabilities.value);
      if (!asArray(capabilities['drop']).includes('ALL')) {
        yield atContainer(
          workload,
          container,
          ['securityContext', 'capabilities'],
          `${describeContainer(container)} does not drop ALL capabilities`,
        );
      }
      const added = asArray(capabilities['add']);
      for (let index = 0; index < added.length; index++) {
        if (added[index] === 'NET_BIND_SERVICE') continue;
        yield atContainer(
          workload,
          container,
          ['securityContext', 'capabilities', 'add', index],
          `${describeContainer(container)} adds ${String(added[index])}`,
        );
      }
    }
  },
};

export const procMountRestricted: Rule = {
  id: 'pss.restricted.proc-mount',
  title: '/proc is masked (procMount Default)',
  severity: 'medium',
  family: 'pod-security-restricted',
  rationale: 'Restricted pods keep the default /proc mask even inside a user namespace.',
  remediation: 'Leave procMount unset or Default.',
  mapping,
  examples: {
    good: [pod({ spec: '  hostUsers: false' })],
    bad: [
      pod({
        spec: '  hostUsers: false',
        container: '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, procMount: Unmasked}',
      }),
    ],
  },
  *check({ workloads }) {
    for (const { workload, container, context } of eachContainer(workloads)) {
      if (context.procMount.value === undefined || context.procMount.value === 'Default') continue;
      yield atContainer(
        workload,
        container,
        ['securityContext', 'procMount'],
        `${describeContainer(container)} sets procMount ${String(context.procMount.value)}`,
      );
    }
  },
};

export const restrictedRules: Rule[] = [
  volumeTypes,
  privilegeEscalation,
  runAsNonRoot,
  runAsUser,
  seccompRestricted,
  capabilitiesRestricted,
  procMountRestricted,
];
