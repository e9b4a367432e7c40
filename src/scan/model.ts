import {
  asArray,
  asObject,
  asString,
  isObject,
  type JsonObject,
  type ObjectRef,
  type Path,
  type SourceDocument,
} from './types.ts';

/**
 * The one model every rule reads: resources (Kubernetes objects, and Compose services mapped onto
 * them), workloads unwrapped to their pod spec, and every container of the pod, init and ephemeral
 * ones included.
 */
export interface Resource {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string | undefined;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  body: JsonObject;
  source: SourceDocument;
  /** Where the object sits in its document (inside a `List`, under `items`). */
  base: Path;
  origin: 'kubernetes' | 'compose';
}

export const containerTypes = ['initContainers', 'containers', 'ephemeralContainers'] as const;
export type ContainerType = (typeof containerTypes)[number];

export interface ContainerRef {
  name: string;
  type: ContainerType;
  index: number;
  spec: JsonObject;
}

export interface Workload {
  resource: Resource;
  podSpec: JsonObject;
  /** Labels and annotations of the pod (the template's for controllers). */
  podLabels: Record<string, string>;
  podAnnotations: Record<string, string>;
  containers: ContainerRef[];
  /** Document path of the pod's metadata (the template's for controllers). */
  metadataPath: Path;
  /** Maps a path relative to the pod spec onto the document path to report. */
  pathOf(relative: Path): Path;
}

export const workloadKinds = [
  'Pod',
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'ReplicationController',
  'Job',
  'CronJob',
  'DeploymentConfig',
  'PodTemplate',
] as const;

/** Where each workload kind keeps its pod template (metadata + spec). */
function templatePath(kind: string): Path | undefined {
  switch (kind) {
    case 'Pod':
      return [];
    case 'CronJob':
      return ['spec', 'jobTemplate', 'spec', 'template'];
    case 'PodTemplate':
      return ['template'];
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'ReplicationController':
    case 'Job':
    case 'DeploymentConfig':
      return ['spec', 'template'];
    default:
      return undefined;
  }
}

function getIn(value: unknown, path: Path): unknown {
  let node = value;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}

export function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(asObject(value))) {
    if (item !== null && item !== undefined) out[key] = String(item);
  }
  return out;
}

export function resourceFrom(body: unknown, source: SourceDocument, base: Path): Resource | undefined {
  if (!isObject(body)) return undefined;
  const kind = asString(body['kind']);
  const apiVersion = asString(body['apiVersion']);
  if (!kind || !apiVersion) return undefined;
  const metadata = asObject(body['metadata']);
  return {
    apiVersion,
    kind,
    name: asString(metadata['name']) ?? asString(metadata['generateName']) ?? '(unnamed)',
    namespace: asString(metadata['namespace']),
    labels: stringMap(metadata['labels']),
    annotations: stringMap(metadata['annotations']),
    body,
    source,
    base,
    origin: 'kubernetes',
  };
}

/** Every Kubernetes object in a parsed document, unwrapping `List` kinds (`v1/List`, `PodList` …). */
export function resourcesOf(document: unknown, source: SourceDocument): Resource[] {
  if (!isObject(document)) return [];
  const kind = asString(document['kind']);
  if (kind?.endsWith('List') && Array.isArray(document['items'])) {
    const resources: Resource[] = [];
    document['items'].forEach((item, index) => {
      const resource = resourceFrom(item, source, ['items', index]);
      if (resource) resources.push(resource);
    });
    return resources;
  }
  const resource = resourceFrom(document, source, []);
  return resource ? [resource] : [];
}

export function containersOf(podSpec: JsonObject): ContainerRef[] {
  const refs: ContainerRef[] = [];
  for (const type of containerTypes) {
    asArray(podSpec[type]).forEach((spec, index) => {
      const container = asObject(spec);
      refs.push({ name: asString(container['name']) ?? `${type}[${index}]`, type, index, spec: container });
    });
  }
  return refs;
}

export function workloadOf(resource: Resource): Workload | undefined {
  const template = templatePath(resource.kind);
  if (template === undefined) return undefined;
  const templateValue = asObject(getIn(resource.body, template));
  const podSpec = asObject(templateValue['spec']);
  const metadata = asObject(templateValue['metadata']);
  const specPath = [...resource.base, ...template, 'spec'];
  return {
    resource,
    podSpec,
    podLabels: stringMap(metadata['labels']),
    podAnnotations: stringMap(metadata['annotations']),
    containers: containersOf(podSpec),
    metadataPath: [...resource.base, ...template, 'metadata'],
    pathOf: (relative) => [...specPath, ...relative],
  };
}

export function containerPath(container: ContainerRef, ...rest: Path): Path {
  return [container.type, container.index, ...rest];
}

export function objectRef(resource: Resource, container?: ContainerRef): ObjectRef {
  const ref: ObjectRef = { kind: resource.kind, name: resource.name };
  if (resource.namespace !== undefined) ref.namespace = resource.namespace;
  if (container) ref.container = container.name;
  return ref;
}

export { getIn };
