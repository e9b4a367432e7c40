import { type ContainerRef, containerPath } from './model.ts';
import { asObject, type Json, type JsonObject, type Path } from './types.ts';

/**
 * The effective security context of one container. Kubernetes lets the pod's `securityContext` supply
 * defaults for a few fields that the container may override; the rest exist only on the container, and
 * the same names set on the pod are not honoured (the API server drops them). Getting this split wrong is
 * the most common false positive of container scanners, so every rule reads fields through here.
 */
export const inheritedFields = [
  'runAsUser',
  'runAsGroup',
  'runAsNonRoot',
  'seLinuxOptions',
  'seccompProfile',
  'appArmorProfile',
  'windowsOptions',
] as const;
export const containerOnlyFields = [
  'privileged',
  'allowPrivilegeEscalation',
  'capabilities',
  'readOnlyRootFilesystem',
  'procMount',
] as const;

export type InheritedField = (typeof inheritedFields)[number];
export type ContainerOnlyField = (typeof containerOnlyFields)[number];
export type SecurityField = InheritedField | ContainerOnlyField;

export interface EffectiveValue {
  value: Json | undefined;
  /** Which level supplied the value, or undefined when neither sets it. */
  from: 'container' | 'pod' | undefined;
  /** Path relative to the pod spec of the field (or, when unset, of the container) to report. */
  path: Path;
}

export type EffectiveSecurityContext = Record<SecurityField, EffectiveValue>;

export function effectiveSecurityContext(
  podSpec: JsonObject,
  container: ContainerRef,
): EffectiveSecurityContext {
  const podContext = asObject(podSpec['securityContext']);
  const containerContext = asObject(container.spec['securityContext']);
  const containerContextPath = containerPath(container, 'securityContext');
  const result = {} as EffectiveSecurityContext;
  for (const field of inheritedFields) {
    if (containerContext[field] !== undefined && containerContext[field] !== null) {
      result[field] = {
        value: containerContext[field],
        from: 'container',
        path: [...containerContextPath, field],
      };
    } else if (podContext[field] !== undefined && podContext[field] !== null) {
      result[field] = { value: podContext[field], from: 'pod', path: ['securityContext', field] };
    } else {
      result[field] = { value: undefined, from: undefined, path: containerPath(container) };
    }
  }
  for (const field of containerOnlyFields) {
    const value = containerContext[field];
    result[field] =
      value !== undefined && value !== null
        ? { value, from: 'container', path: [...containerContextPath, field] }
        : { value: undefined, from: undefined, path: containerPath(container) };
  }
  return result;
}
