import { asString } from '../types.ts';
import { eachContainer } from './pss-baseline.ts';
import { pod } from './pss-examples.ts';
import { atContainer, compose, describeContainer, type Rule } from './rule.ts';

/** Splits an image reference into registry, repository path, tag and digest (Docker's rules for a default registry). */
export function parseImage(image: string): { registry: string; path: string; tag?: string; digest?: string } {
  const [withoutDigest, digest] = image.split('@') as [string, string | undefined];
  const slash = withoutDigest.indexOf('/');
  const first = slash >= 0 ? withoutDigest.slice(0, slash) : '';
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = hasRegistry ? first : 'docker.io';
  let rest = hasRegistry ? withoutDigest.slice(slash + 1) : withoutDigest;
  const colon = rest.lastIndexOf(':');
  let tag: string | undefined;
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const out: { registry: string; path: string; tag?: string; digest?: string } = { registry, path: rest };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

export function registryAllowed(image: string, allowed: readonly string[]): boolean {
  const { registry, path } = parseImage(image);
  const full = `${registry}/${path}`;
  return allowed.some(
    (prefix) =>
      full === prefix || full.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`) || registry === prefix,
  );
}

const digest = `sha256:${'b'.repeat(64)}`;
const mapping = {
  pci: { '6.3.2': 'supporting', '2.2.1': 'supporting' },
  guidance: { '3.2': 'direct', '13.4': 'supporting' },
} as const;

export const imageTag: Rule = {
  id: 'image.tag',
  title: 'Images name a specific version, not latest or nothing',
  severity: 'medium',
  family: 'images',
  rationale: 'A floating tag can be replaced in the registry: what runs is not what was reviewed.',
  remediation: 'Reference an explicit version tag and, better, a digest (image@sha256:…).',
  mapping,
  examples: {
    good: [pod({}), compose(`services:\n  web:\n    image: nginx:1.27.3\n`)],
    bad: [
      pod({ spec: '  - {name: side, image: "busybox:latest"}' }),
      compose(`services:\n  web:\n    image: nginx:latest\n`),
      compose(`services:\n  web:\n    image: nginx\n`),
    ],
  },
  *check({ workloads }) {
    for (const { workload, container } of eachContainer(workloads)) {
      const image = asString(container.spec['image']);
      if (!image) continue;
      const parsed = parseImage(image);
      if (parsed.digest) continue;
      if (parsed.tag === undefined || parsed.tag === 'latest') {
        yield atContainer(
          workload,
          container,
          ['image'],
          `${describeContainer(container)} uses ${parsed.tag ? 'the latest tag' : 'no tag'} (${image})`,
        );
      }
    }
  },
};

export const imageDigest: Rule = {
  id: 'image.digest',
  title: 'Images are pinned by digest',
  severity: 'low',
  family: 'images',
  rationale: 'Only a digest names immutable content; tags can be moved to other images.',
  remediation: 'Pin with image@sha256:<digest> (keep the tag beside it for readers: name:1.2.3@sha256:…).',
  mapping: { pci: { '6.3.2': 'supporting' }, guidance: { '3.2': 'direct', '13.4': 'direct' } },
  examples: {
    good: [pod({}), compose(`services:\n  web:\n    image: nginx:1.27.3@${digest}\n`)],
    bad: [compose(`services:\n  web:\n    image: nginx:1.27.3\n`)],
  },
  *check({ workloads }) {
    for (const { workload, container } of eachContainer(workloads)) {
      const image = asString(container.spec['image']);
      if (image && !parseImage(image).digest) {
        yield atContainer(
          workload,
          container,
          ['image'],
          `${describeContainer(container)} image ${image} is not pinned by digest`,
        );
      }
    }
  },
};

export const imageRegistry: Rule = {
  id: 'image.registry',
  title: 'Images come from an allowed registry',
  severity: 'high',
  family: 'images',
  rationale: 'Images from registries outside your control can carry malware or unreviewed changes.',
  remediation:
    'Mirror the image into an allowed registry, or add the registry to `allowedRegistries` in the scanner configuration.',
  mapping: {
    pci: { '6.3.2': 'supporting', '7.2.1': 'supporting' },
    guidance: { '3.3': 'direct', '12.2': 'direct', '13.2': 'supporting' },
  },
  examples: {
    good: [
      {
        ...compose(`services:\n  web:\n    image: registry.example.com/web:1.0@${digest}\n`),
        config: { allowedRegistries: ['registry.example.com'] },
      },
    ],
    bad: [
      {
        ...compose(`services:\n  web:\n    image: docker.io/library/nginx:1.27.3\n`),
        config: { allowedRegistries: ['registry.example.com'] },
      },
    ],
  },
  *check({ workloads, config }) {
    if (config.allowedRegistries.length === 0) return;
    for (const { workload, container } of eachContainer(workloads)) {
      const image = asString(container.spec['image']);
      if (image && !registryAllowed(image, config.allowedRegistries)) {
        yield atContainer(
          workload,
          container,
          ['image'],
          `${describeContainer(container)} image ${image} is not from an allowed registry`,
        );
      }
    }
  },
};

export const imageRules: Rule[] = [imageTag, imageDigest, imageRegistry];
