import type { ScanConfig } from '../config.ts';
import type { ComposeService } from '../inputs/compose.ts';
import type { DockerfileModel } from '../inputs/dockerfile.ts';
import { type ContainerRef, containerPath, objectRef, type Resource, type Workload } from '../model.ts';
import type { ObjectRef, Path, Severity, SourceDocument } from '../types.ts';

export type Strength = 'direct' | 'supporting';

/** The two mapping axes: PCI DSS v4.0.1 requirement ids and PCI container guidance sections. */
export type RuleMapping =
  | { pci: Record<string, Strength>; guidance: Record<string, Strength> }
  | { none: string };

export type ExampleFormat = 'kubernetes' | 'dockerfile' | 'compose';

export interface RuleExample {
  format: ExampleFormat;
  text: string;
  /** Configuration the example needs (an allow-list, say); merged over the defaults. */
  config?: Partial<ScanConfig>;
}

export interface Rule {
  /** Stable: reports, waivers and CI configurations refer to it. Never renamed or reused. */
  id: string;
  title: string;
  severity: Severity;
  family: string;
  rationale: string;
  remediation: string;
  mapping: RuleMapping;
  examples: { good: RuleExample[]; bad: RuleExample[] };
  check(context: RuleContext): Iterable<RawFinding>;
}

export interface RuleContext {
  resources: readonly Resource[];
  workloads: readonly Workload[];
  dockerfiles: readonly DockerfileModel[];
  composeServices: readonly ComposeService[];
  config: ScanConfig;
}

export interface RawFinding {
  message: string;
  source: SourceDocument;
  path: Path;
  object?: ObjectRef;
  /** A line to report directly (Dockerfiles, which have no tree). */
  line?: number;
}

/** A finding about a field of a workload's pod spec (`relative` is relative to the pod spec). */
export function atWorkload(
  workload: Workload,
  relative: Path,
  message: string,
  container?: ContainerRef,
): RawFinding {
  return {
    message,
    source: workload.resource.source,
    path: workload.pathOf(relative),
    object: objectRef(workload.resource, container),
  };
}

export function atPodMetadata(workload: Workload, relative: Path, message: string): RawFinding {
  return {
    message,
    source: workload.resource.source,
    path: [...workload.metadataPath, ...relative],
    object: objectRef(workload.resource),
  };
}

export function atContainer(
  workload: Workload,
  container: ContainerRef,
  relative: Path,
  message: string,
): RawFinding {
  return atWorkload(workload, containerPath(container, ...relative), message, container);
}

/** A finding about a field of any resource (`relative` is relative to the object). */
export function atResource(resource: Resource, relative: Path, message: string): RawFinding {
  return {
    message,
    source: resource.source,
    path: [...resource.base, ...relative],
    object: objectRef(resource),
  };
}

export function describeContainer(container: ContainerRef): string {
  const kind = {
    containers: 'container',
    initContainers: 'init container',
    ephemeralContainers: 'ephemeral container',
  }[container.type];
  return `${kind} "${container.name}"`;
}

export function k8s(text: string): RuleExample {
  return { format: 'kubernetes', text };
}
export function dockerfile(text: string): RuleExample {
  return { format: 'dockerfile', text };
}
export function compose(text: string): RuleExample {
  return { format: 'compose', text };
}
