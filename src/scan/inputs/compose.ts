import { containersOf, type Resource, stringMap, type Workload } from '../model.ts';
import {
  asArray,
  asObject,
  asString,
  isObject,
  type Json,
  type JsonObject,
  type Path,
  type SourceDocument,
} from '../types.ts';

/**
 * Maps Compose services (Compose Specification, file formats v2 and v3) onto the workload model, so one
 * rule serves both: `privileged` → securityContext.privileged, `network_mode: host` → hostNetwork,
 * `cap_add`/`cap_drop` → capabilities, `security_opt` → allowPrivilegeEscalation/seccomp/AppArmor,
 * `read_only` → readOnlyRootFilesystem, `user` → runAsUser, bind mounts → hostPath, limits → resources.
 * Each synthesized field remembers the Compose key it came from, so findings point at that line.
 */
export function isComposeDocument(value: unknown): value is JsonObject {
  return (
    isObject(value) &&
    isObject(value['services']) &&
    value['kind'] === undefined &&
    value['apiVersion'] === undefined
  );
}

/** Which Compose key a path into the synthesized pod spec came from (most specific key wins). */
const composeKeys: [string, string][] = [
  ['hostNetwork', 'network_mode'],
  ['hostPID', 'pid'],
  ['hostIPC', 'ipc'],
  ['volumes', 'volumes'],
  ['privileged', 'privileged'],
  ['add', 'cap_add'],
  ['drop', 'cap_drop'],
  ['capabilities', 'cap_drop'],
  ['readOnlyRootFilesystem', 'read_only'],
  ['runAsUser', 'user'],
  ['runAsNonRoot', 'user'],
  ['runAsGroup', 'user'],
  ['allowPrivilegeEscalation', 'security_opt'],
  ['seccompProfile', 'security_opt'],
  ['appArmorProfile', 'security_opt'],
  ['resources', 'deploy'],
  ['image', 'image'],
  ['env', 'environment'],
  ['livenessProbe', 'healthcheck'],
  ['readinessProbe', 'healthcheck'],
];

function composePath(service: string, raw: JsonObject, relative: Path): Path {
  const base: Path = ['services', service];
  for (let depth = relative.length - 1; depth >= 0; depth--) {
    const segment = relative[depth];
    const found = composeKeys.find(([key]) => key === segment);
    if (!found) continue;
    const key = found[1];
    if (key === 'deploy' && raw['deploy'] === undefined) {
      for (const alternative of ['mem_limit', 'cpus', 'pids_limit']) {
        if (raw[alternative] !== undefined) return [...base, alternative];
      }
    }
    if (key === 'volumes' && typeof relative[depth + 1] === 'number')
      return [...base, 'volumes', relative[depth + 1] as number];
    if (key === 'env' || key === 'environment') return [...base, 'environment'];
    return raw[key] !== undefined ? [...base, key] : base;
  }
  return base;
}

function parseUser(user: string | undefined): {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
} {
  if (user === undefined) return {};
  const [name, group] = user.split(':');
  const out: { runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean } = {};
  if (name === 'root') out.runAsUser = 0;
  else if (name !== undefined && /^\d+$/.test(name)) out.runAsUser = Number(name);
  if (group !== undefined && /^\d+$/.test(group)) out.runAsGroup = Number(group);
  // A numeric non-zero user is Docker's equivalent of runAsNonRoot: a named user may still be root.
  if (out.runAsUser !== undefined) out.runAsNonRoot = out.runAsUser !== 0;
  return out;
}

function environmentList(environment: Json | undefined): JsonObject[] {
  if (Array.isArray(environment)) {
    return environment.map((entry): JsonObject => {
      const text = String(entry);
      const at = text.indexOf('=');
      return at < 0 ? { name: text } : { name: text.slice(0, at), value: text.slice(at + 1) };
    });
  }
  return Object.entries(asObject(environment)).map(
    ([name, value]): JsonObject => (value === null ? { name } : { name, value: String(value) }),
  );
}

function bindMounts(volumes: Json | undefined): JsonObject[] {
  return asArray(volumes).map((volume, index): JsonObject => {
    if (typeof volume === 'string') {
      const source = volume.split(':')[0] ?? '';
      const bind = source.startsWith('/') || source.startsWith('.') || source.startsWith('~');
      return bind ? { name: `volume-${index}`, hostPath: { path: source } } : { name: source, emptyDir: {} };
    }
    const spec = asObject(volume);
    if (spec['type'] === 'bind')
      return { name: `volume-${index}`, hostPath: { path: asString(spec['source']) ?? '' } };
    return { name: asString(spec['source']) ?? `volume-${index}`, emptyDir: {} };
  });
}

function resourcesOf(raw: JsonObject): JsonObject {
  const deploy = asObject(asObject(raw['deploy'])['resources']);
  const limits: JsonObject = {};
  const requests: JsonObject = {};
  const deployLimits = asObject(deploy['limits']);
  const reservations = asObject(deploy['reservations']);
  if (deployLimits['cpus'] !== undefined || raw['cpus'] !== undefined)
    limits['cpu'] = String(deployLimits['cpus'] ?? raw['cpus']);
  if (deployLimits['memory'] !== undefined || raw['mem_limit'] !== undefined) {
    limits['memory'] = String(deployLimits['memory'] ?? raw['mem_limit']);
  }
  if (deployLimits['pids'] !== undefined || raw['pids_limit'] !== undefined)
    limits['pids'] = String(deployLimits['pids'] ?? raw['pids_limit']);
  if (reservations['cpus'] !== undefined) requests['cpu'] = String(reservations['cpus']);
  if (reservations['memory'] !== undefined || raw['mem_reservation'] !== undefined) {
    requests['memory'] = String(reservations['memory'] ?? raw['mem_reservation']);
  }
  return { limits, requests };
}

export interface ComposeService {
  resource: Resource;
  workload: Workload;
  raw: JsonObject;
  /** The file's top-level `networks` map, for the internal-network check. */
  networks: JsonObject;
}

export function composeServices(document: JsonObject, source: SourceDocument): ComposeService[] {
  const services: ComposeService[] = [];
  for (const [name, value] of Object.entries(asObject(document['services']))) {
    const raw = asObject(value);
    const securityOptions = asArray(raw['security_opt']).map(String);
    const option = (prefix: string) =>
      securityOptions
        .find((entry) => entry.replace('=', ':').startsWith(`${prefix}:`))
        ?.replace('=', ':')
        .slice(prefix.length + 1);
    const noNewPrivileges = option('no-new-privileges');
    const seccomp = option('seccomp');
    const apparmor = option('apparmor');
    const securityContext: JsonObject = {
      ...parseUser(
        asString(raw['user']) ?? (typeof raw['user'] === 'number' ? String(raw['user']) : undefined),
      ),
    };
    if (raw['privileged'] === true) securityContext['privileged'] = true;
    if (noNewPrivileges !== undefined)
      securityContext['allowPrivilegeEscalation'] = noNewPrivileges === 'false';
    // Docker applies its default seccomp and AppArmor profiles unless they are switched off.
    securityContext['seccompProfile'] = {
      type: seccomp === 'unconfined' ? 'Unconfined' : seccomp ? 'Localhost' : 'RuntimeDefault',
    };
    if (apparmor === 'unconfined') securityContext['appArmorProfile'] = { type: 'Unconfined' };
    if (raw['read_only'] === true) securityContext['readOnlyRootFilesystem'] = true;
    const capabilities: JsonObject = {};
    if (raw['cap_add'] !== undefined)
      capabilities['add'] = asArray(raw['cap_add']).map((cap) => String(cap).replace(/^CAP_/, ''));
    if (raw['cap_drop'] !== undefined)
      capabilities['drop'] = asArray(raw['cap_drop']).map((cap) => String(cap).replace(/^CAP_/, ''));
    if (Object.keys(capabilities).length > 0) securityContext['capabilities'] = capabilities;
    const container: JsonObject = {
      name,
      image: asString(raw['image']) ?? '',
      securityContext,
      env: environmentList(raw['environment']),
      resources: resourcesOf(raw),
    };
    if (raw['healthcheck'] !== undefined && asObject(raw['healthcheck'])['disable'] !== true) {
      container['livenessProbe'] = { exec: { command: ['healthcheck'] } };
      container['readinessProbe'] = { exec: { command: ['healthcheck'] } };
    }
    const podSpec: JsonObject = {
      containers: [container],
      volumes: bindMounts(raw['volumes']),
      hostNetwork: raw['network_mode'] === 'host',
      hostPID: raw['pid'] === 'host',
      hostIPC: raw['ipc'] === 'host',
    };
    const labels = composeLabels(raw['labels']);
    const resource: Resource = {
      apiVersion: 'compose',
      kind: 'ComposeService',
      name,
      namespace: undefined,
      labels,
      annotations: {},
      body: raw,
      source,
      base: ['services', name],
      origin: 'compose',
    };
    const workload: Workload = {
      resource,
      podSpec,
      podLabels: labels,
      podAnnotations: {},
      containers: containersOf(podSpec),
      metadataPath: ['services', name, 'labels'],
      pathOf: (relative) => composePath(name, raw, relative),
    };
    services.push({ resource, workload, raw, networks: asObject(document['networks']) });
  }
  return services;
}

function composeLabels(labels: Json | undefined): Record<string, string> {
  if (Array.isArray(labels)) {
    const out: Record<string, string> = {};
    for (const entry of labels) {
      const [key, ...rest] = String(entry).split('=');
      if (key) out[key] = rest.join('=');
    }
    return out;
  }
  return stringMap(labels);
}
