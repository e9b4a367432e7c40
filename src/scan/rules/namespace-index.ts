import type { Resource } from '../model.ts';

/**
 * Cross-object lookups by namespace, built in one pass over the resources by the rules that need them
 * (NetworkPolicy coverage, CDE isolation), instead of a scan of every resource per namespace.
 * Lists keep the input order, so the first match is the one a linear search would find.
 */
export interface NamespaceIndex {
  /** NetworkPolicies of a namespace (no namespace counts as `default`). */
  policies(namespace: string): readonly Resource[];
  /** The first Namespace object of that name. */
  namespaceObject(name: string): Resource | undefined;
  /** The first resource that names this namespace. */
  firstIn(namespace: string): Resource | undefined;
}

export function namespaceIndex(resources: readonly Resource[]): NamespaceIndex {
  const policies = new Map<string, Resource[]>();
  const namespaceObjects = new Map<string, Resource>();
  const first = new Map<string, Resource>();
  for (const resource of resources) {
    if (resource.kind === 'NetworkPolicy') {
      const namespace = resource.namespace ?? 'default';
      const list = policies.get(namespace);
      if (list) list.push(resource);
      else policies.set(namespace, [resource]);
    }
    if (resource.kind === 'Namespace' && !namespaceObjects.has(resource.name))
      namespaceObjects.set(resource.name, resource);
    if (resource.namespace !== undefined && !first.has(resource.namespace))
      first.set(resource.namespace, resource);
  }
  return {
    policies: (namespace) => policies.get(namespace) ?? [],
    namespaceObject: (name) => namespaceObjects.get(name),
    firstIn: (namespace) => first.get(namespace),
  };
}
