import type { ScanConfig } from '../config.ts';
import type { Resource, Workload } from '../model.ts';

/** Whether a workload, service or namespace belongs to the cardholder data environment (by label). */
export function isCdeLabelled(labels: Record<string, string>, config: ScanConfig): boolean {
  return labels[config.cde.label] === config.cde.value;
}

export function cdeNamespaces(resources: readonly Resource[], config: ScanConfig): Set<string> {
  const names = new Set<string>();
  for (const resource of resources) {
    if (resource.kind === 'Namespace' && isCdeLabelled(resource.labels, config)) names.add(resource.name);
  }
  return names;
}

export function isCdeWorkload(
  workload: Workload,
  cdeNamespaceNames: Set<string>,
  config: ScanConfig,
): boolean {
  return (
    isCdeLabelled(workload.podLabels, config) ||
    isCdeLabelled(workload.resource.labels, config) ||
    (workload.resource.namespace !== undefined && cdeNamespaceNames.has(workload.resource.namespace))
  );
}
