import type { DockerfileModel, Instruction } from '../inputs/dockerfile.ts';
import { parseImage, registryAllowed } from './images.ts';
import { dockerfile, type RawFinding, type Rule } from './rule.ts';
import { isLiteralValue, isSecretLikeName, isSecretLikeValue } from './secret-patterns.ts';

/** Dockerfile rules: the image's user, base, build-time secrets, package hygiene and TLS. */

function at(model: DockerfileModel, line: number, message: string): RawFinding {
  return { message, source: model.source, path: [], line, object: { kind: 'Dockerfile', name: model.file } };
}

function finalStage(model: DockerfileModel): Instruction[] {
  const last = model.stageCount - 1;
  return model.instructions.filter((instruction) => instruction.stage === last);
}

/**
 * FROM instructions that name an image, not an earlier stage or scratch. A FROM that names a build
 * argument is judged by the argument's default (global ARGs, before the first FROM), which is what a
 * build without --build-arg uses; an argument without a default cannot be judged and is left out.
 */
function baseImages(model: DockerfileModel): { instruction: Instruction; image: string }[] {
  const stages = new Set<string>();
  const globalArgs = new Map<string, string>();
  let sawFrom = false;
  const out: { instruction: Instruction; image: string }[] = [];
  for (const instruction of model.instructions) {
    if (instruction.keyword === 'ARG' && !sawFrom) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|'([^']*)'|(\S*))/.exec(instruction.arguments);
      if (match?.[1]) globalArgs.set(match[1], match[2] ?? match[3] ?? match[4] ?? '');
    }
    if (instruction.keyword !== 'FROM') continue;
    sawFrom = true;
    const words = instruction.arguments.split(/\s+/).filter((word) => !word.startsWith('--'));
    const image = (words[0] ?? '').replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (whole, braced: string | undefined, bare: string | undefined) =>
        globalArgs.get(braced ?? bare ?? '') ?? whole,
    );
    if (words[1]?.toLowerCase() === 'as' && words[2]) stages.add(words[2].toLowerCase());
    if (image === 'scratch' || stages.has(image.toLowerCase()) || image.includes('$')) continue;
    out.push({ instruction, image });
  }
  return out;
}

const good = `FROM registry.example.com/node:24@sha256:${'c'.repeat(64)} AS build
RUN npm ci
FROM registry.example.com/distroless/nodejs24@sha256:${'d'.repeat(64)}
COPY --from=build /app /app
USER 10001
HEALTHCHECK CMD ["/nodejs/bin/node", "/app/health.js"]
CMD ["/app/main.js"]
`;

const mapping = {
  pci: { '2.2.1': 'direct', '6.3.2': 'supporting' },
  guidance: { '12.1': 'direct' },
} as const;

function* runCommands(model: DockerfileModel) {
  for (const instruction of model.instructions) if (instruction.keyword === 'RUN') yield instruction;
}

export const dockerUser: Rule = {
  id: 'docker.user',
  title: 'The image runs as a non-root USER',
  severity: 'high',
  family: 'dockerfile',
  rationale:
    'Without a USER the container runs as root, and any runtime that does not force a user inherits it.',
  remediation: 'Add `USER <non-zero uid>` to the final stage, after everything that needs root.',
  mapping: { pci: { '2.2.1': 'direct', '7.2.1': 'supporting' }, guidance: { '12.3': 'direct' } },
  examples: {
    good: [dockerfile(good)],
    bad: [
      dockerfile('FROM alpine:3.20\nCMD ["sh"]\n'),
      dockerfile('FROM alpine:3.20\nUSER app\nUSER root\n'),
    ],
  },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      const users = finalStage(model).filter((instruction) => instruction.keyword === 'USER');
      const last = users.at(-1);
      const from = finalStage(model)[0]?.line ?? 1;
      if (!last) yield at(model, from, 'the final stage sets no USER: the image runs as root');
      else if (/^(root|0)(:.*)?$/.test(last.arguments))
        yield at(model, last.line, `the final USER is ${last.arguments}`);
    }
  },
};

export const dockerBaseDigest: Rule = {
  id: 'docker.base-digest',
  title: 'Base images are pinned by digest',
  severity: 'medium',
  family: 'dockerfile',
  rationale:
    'A tag can be moved to other content; only a digest makes the build reproducible and reviewable.',
  remediation: 'Write FROM name:tag@sha256:<digest> and let a bot update digests.',
  mapping: { pci: { '6.3.2': 'supporting' }, guidance: { '3.2': 'direct', '12.1': 'direct' } },
  examples: {
    good: [
      dockerfile(good),
      dockerfile(
        `ARG BASE=registry.example.com/node:24@sha256:${'e'.repeat(64)}\nARG SOURCE=build\nFROM \${BASE} AS build\nFROM \${SOURCE} AS app\nFROM $BASE\nUSER 1000\n`,
      ),
    ],
    bad: [dockerfile('FROM node:24\nUSER node\n'), dockerfile('ARG BASE=node:24\nFROM $BASE\nUSER node\n')],
  },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      for (const { instruction, image } of baseImages(model)) {
        if (!parseImage(image).digest)
          yield at(model, instruction.line, `base image ${image} is not pinned by digest`);
      }
    }
  },
};

export const dockerRegistry: Rule = {
  id: 'docker.base-registry',
  title: 'Base images come from a trusted registry',
  severity: 'high',
  family: 'dockerfile',
  rationale:
    'Public registries serve whatever was pushed last; a curated internal registry is the supply-chain control point.',
  remediation: 'Mirror the base image into an allowed registry, or add the registry to `allowedRegistries`.',
  mapping: { pci: { '6.3.2': 'supporting' }, guidance: { '3.3': 'direct', '12.2': 'direct' } },
  examples: {
    good: [{ ...dockerfile(good), config: { allowedRegistries: ['registry.example.com'] } }],
    bad: [
      { ...dockerfile('FROM node:24\nUSER node\n'), config: { allowedRegistries: ['registry.example.com'] } },
    ],
  },
  *check({ dockerfiles, config }) {
    if (config.allowedRegistries.length === 0) return;
    for (const model of dockerfiles) {
      for (const { instruction, image } of baseImages(model)) {
        if (!registryAllowed(image, config.allowedRegistries))
          yield at(model, instruction.line, `base image ${image} is not from an allowed registry`);
      }
    }
  },
};

export const dockerAddUrl: Rule = {
  id: 'docker.add-url',
  title: 'No ADD from URLs',
  severity: 'medium',
  family: 'dockerfile',
  rationale: 'ADD <url> fetches unverified content at build time; nothing checks what arrives.',
  remediation:
    'Download with a pinned checksum (ADD --checksum=sha256:… or curl + sha256sum -c), or COPY a vetted file.',
  mapping,
  examples: {
    good: [dockerfile(good)],
    bad: [dockerfile('FROM alpine:3.20\nADD https://example.com/tool.tar.gz /opt/\nUSER 1000\n')],
  },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      for (const instruction of model.instructions) {
        if (
          instruction.keyword === 'ADD' &&
          /(^|\s)https?:\/\//.test(instruction.arguments) &&
          !instruction.arguments.includes('--checksum=')
        ) {
          yield at(model, instruction.line, 'ADD fetches a URL without a checksum');
        }
      }
    }
  },
};

const keyFiles =
  /(^|[\s/])(id_rsa|id_ed25519|id_ecdsa|[\w.-]+\.pem|[\w.-]+\.key|\.env|\.npmrc|\.pypirc|\.netrc|credentials(\.json)?|\.aws|\.ssh|\.docker\/config\.json|kubeconfig)(\s|$|\/)/;

export const dockerSecrets: Rule = {
  id: 'docker.secrets',
  title: 'No secrets in ENV, ARG or copied key files',
  severity: 'high',
  family: 'dockerfile',
  rationale:
    'ENV and ARG values and copied files persist in image layers and history, readable by anyone who pulls the image.',
  remediation:
    'Use BuildKit secret mounts (RUN --mount=type=secret) and runtime secrets; never bake credentials into layers.',
  mapping: {
    pci: { '8.6.2': 'direct', '3.6.1': 'supporting' },
    guidance: { '12.4': 'direct', '6.1': 'supporting' },
  },
  examples: {
    good: [dockerfile(`${good}ARG NODE_ENV=production\n`)],
    bad: [
      dockerfile('FROM alpine:3.20\nENV DB_PASSWORD=hunter2hunter2\nUSER 1000\n'),
      dockerfile('FROM alpine:3.20\nCOPY id_rsa /root/.ssh/id_rsa\nUSER 1000\n'),
    ],
  },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      for (const instruction of model.instructions) {
        if (instruction.keyword === 'ENV' || instruction.keyword === 'ARG') {
          for (const match of instruction.arguments.matchAll(/([\w.-]+)(?:=|\s+)("[^"]*"|'[^']*'|\S+)/g)) {
            const name = match[1] ?? '';
            const value = (match[2] ?? '').replace(/^["']|["']$/g, '');
            if (isLiteralValue(value) && (isSecretLikeName(name) || isSecretLikeValue(value))) {
              yield at(model, instruction.line, `${instruction.keyword} ${name} holds a literal credential`);
            }
          }
        }
        if (
          (instruction.keyword === 'COPY' || instruction.keyword === 'ADD') &&
          keyFiles.test(instruction.arguments)
        ) {
          yield at(
            model,
            instruction.line,
            `${instruction.keyword} copies a key or credentials file into the image`,
          );
        }
      }
    }
  },
};

const installers: { pattern: RegExp; pinned: (word: string) => boolean; name: string }[] = [
  { pattern: /\bapt(-get)?\s+(-\S+\s+)*install\b(.*)/, pinned: (w) => w.includes('='), name: 'apt' },
  { pattern: /\bapk\s+(-\S+\s+)*add\b(.*)/, pinned: (w) => w.includes('='), name: 'apk' },
  { pattern: /\bpip3?\s+install\b(.*)/, pinned: (w) => /==|@|\.whl$|^-r$|^\.|\//.test(w), name: 'pip' },
  { pattern: /\bnpm\s+(i|install)\s+(-g|--global)\b(.*)/, pinned: (w) => /@\d/.test(w), name: 'npm' },
];

export const dockerPackagePinning: Rule = {
  id: 'docker.package-pinning',
  title: 'Installed packages are pinned to versions',
  severity: 'low',
  family: 'dockerfile',
  rationale:
    'Unpinned packages make every build different; a compromised or broken release slips in unnoticed.',
  remediation:
    'Pin versions (apt-get install pkg=1.2.3, apk add pkg=1.2.3, pip install pkg==1.2.3, npm i -g pkg@1.2.3).',
  mapping: { pci: { '6.3.2': 'direct', '2.2.1': 'supporting' }, guidance: { '12.1': 'direct' } },
  examples: {
    good: [
      dockerfile(
        'FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u8\nUSER 1000\n',
      ),
    ],
    bad: [
      dockerfile(
        'FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\nUSER 1000\n',
      ),
    ],
  },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      for (const instruction of runCommands(model)) {
        for (const segment of instruction.arguments.split(/&&|;|\|\|/)) {
          for (const installer of installers) {
            const match = installer.pattern.exec(segment);
            if (!match) continue;
            const words = (match[match.length - 1] ?? '')
              .trim()
              .split(/\s+/)
              .filter((w) => w && !w.startsWith('-') && !w.startsWith('$'));
            const loose = words.filter((word) => !installer.pinned(word));
            if (loose.length > 0)
              yield at(
                model,
                instruction.line,
                `${installer.name} installs ${loose.join(', ')} without a pinned version`,
              );
          }
        }
      }
    }
  },
};

export const dockerNoRecommends: Rule = {
  id: 'docker.no-install-recommends',
  title: 'apt-get installs without recommended packages',
  severity: 'low',
  family: 'dockerfile',
  rationale: 'Recommended packages add software nobody asked for: more to patch, more to exploit.',
  remediation: 'Use apt-get install --no-install-recommends.',
  mapping: { pci: { '2.2.4': 'direct', '2.2.1': 'supporting' }, guidance: { '12.1': 'direct' } },
  examples: {
    good: [
      dockerfile(
        'FROM debian:12\nRUN apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u8\nUSER 1000\n',
      ),
    ],
    bad: [dockerfile('FROM debian:12\nRUN apt-get install -y curl=7.88.1-10+deb12u8\nUSER 1000\n')],
  },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      for (const instruction of runCommands(model)) {
        for (const segment of instruction.arguments.split(/&&|;/)) {
          if (
            /\bapt(-get)?\s+.*\binstall\b/.test(segment) &&
            !/--no-install-recommends|-o\s+APT::Install-Recommends=(false|0)/.test(segment)
          ) {
            yield at(
              model,
              instruction.line,
              'apt installs recommended packages (no --no-install-recommends)',
            );
          }
        }
      }
    }
  },
};

export const dockerCurlPipe: Rule = {
  id: 'docker.curl-pipe-shell',
  title: 'No downloaded scripts piped into a shell',
  severity: 'high',
  family: 'dockerfile',
  rationale: 'curl | sh runs whatever the server (or anyone on the path) returns, unreviewed and unverified.',
  remediation: 'Download to a file, verify its checksum or signature, then run it.',
  mapping,
  examples: {
    good: [
      dockerfile(
        'FROM alpine:3.20\nRUN wget -O /tmp/i.sh https://example.com/i.sh && echo "abc  /tmp/i.sh" | sha256sum -c && sh /tmp/i.sh\nUSER 1000\n',
      ),
    ],
    bad: [dockerfile('FROM alpine:3.20\nRUN curl -fsSL https://example.com/install.sh | sh\nUSER 1000\n')],
  },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      for (const instruction of runCommands(model)) {
        if (/\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(ba|z|da)?sh\b/.test(instruction.arguments)) {
          yield at(model, instruction.line, 'a downloaded script is piped into a shell');
        }
      }
    }
  },
};

const tlsOff: [RegExp, string][] = [
  [/\bcurl\b[^|;&]*\s(-k|--insecure)\b/, 'curl --insecure'],
  [/\bwget\b[^|;&]*--no-check-certificate/, 'wget --no-check-certificate'],
  [/PIP_TRUSTED_HOST|--trusted-host/, 'pip trusted host'],
  [/NODE_TLS_REJECT_UNAUTHORIZED\s*=?\s*["']?0/, 'NODE_TLS_REJECT_UNAUTHORIZED=0'],
  [/strict-ssl\s*=?\s*false|strict-ssl\s+false/, 'npm strict-ssl false'],
  [/http\.sslVerify\s*=?\s*false|http\.sslverify\s+false|GIT_SSL_NO_VERIFY/i, 'git SSL verification off'],
  [/sslverify\s*=\s*(0|false)/i, 'yum/dnf sslverify off'],
  [
    /--allow-unauthenticated|--force-yes|--allow-untrusted|--nogpgcheck|--nosignature/,
    'unsigned packages allowed',
  ],
];

export const dockerTls: Rule = {
  id: 'docker.tls-verification',
  title: 'TLS and package signature verification stay on',
  severity: 'high',
  family: 'dockerfile',
  rationale:
    'Switching verification off lets anyone on the network path substitute what the build downloads.',
  remediation: 'Remove the flag; add the internal CA to the trust store if a proxy re-signs traffic.',
  mapping: { pci: { '4.2.1': 'supporting', '6.3.2': 'supporting' }, guidance: { '12.1': 'direct' } },
  examples: {
    good: [dockerfile('FROM alpine:3.20\nRUN curl -fsSLo /tmp/x https://example.com/x\nUSER 1000\n')],
    bad: [
      dockerfile('FROM alpine:3.20\nRUN curl -k -o /tmp/x https://example.com/x\nUSER 1000\n'),
      dockerfile('FROM node:24\nENV NODE_TLS_REJECT_UNAUTHORIZED=0\nUSER node\n'),
    ],
  },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      for (const instruction of model.instructions) {
        if (!['RUN', 'ENV', 'ARG'].includes(instruction.keyword)) continue;
        for (const [pattern, what] of tlsOff) {
          if (pattern.test(instruction.arguments))
            yield at(model, instruction.line, `verification disabled: ${what}`);
        }
      }
    }
  },
};

export const dockerHealthcheck: Rule = {
  id: 'docker.healthcheck',
  title: 'The image declares a HEALTHCHECK',
  severity: 'low',
  family: 'dockerfile',
  rationale: 'Without a health check, Docker and Compose keep routing to a broken or hijacked container.',
  remediation: 'Add HEALTHCHECK CMD … to the final stage (Kubernetes uses probes instead; waive there).',
  mapping: {
    none: 'availability hygiene; no PCI DSS requirement or container guidance area asks for health checks',
  },
  examples: { good: [dockerfile(good)], bad: [dockerfile('FROM alpine:3.20\nUSER 1000\nCMD ["sh"]\n')] },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      const stage = finalStage(model);
      if (stage.length > 0 && !stage.some((instruction) => instruction.keyword === 'HEALTHCHECK')) {
        yield at(model, stage[0]?.line ?? 1, 'the final stage has no HEALTHCHECK');
      }
    }
  },
};

export const dockerMultipleCmd: Rule = {
  id: 'docker.multiple-cmd',
  title: 'One CMD and one ENTRYPOINT per stage',
  severity: 'low',
  family: 'dockerfile',
  rationale: 'Only the last CMD or ENTRYPOINT takes effect; earlier ones mislead reviewers about what runs.',
  remediation: 'Keep a single CMD and a single ENTRYPOINT in each stage.',
  mapping: { none: 'build hygiene; reviewed under 15.1 only as general configuration quality, not mapped' },
  examples: {
    good: [dockerfile(good)],
    bad: [dockerfile('FROM alpine:3.20\nUSER 1000\nCMD ["a"]\nCMD ["b"]\n')],
  },
  *check({ dockerfiles }) {
    for (const model of dockerfiles) {
      for (const keyword of ['CMD', 'ENTRYPOINT']) {
        const seen = new Map<number, number>();
        for (const instruction of model.instructions) {
          if (instruction.keyword !== keyword) continue;
          const count = (seen.get(instruction.stage) ?? 0) + 1;
          seen.set(instruction.stage, count);
          if (count > 1) yield at(model, instruction.line, `a second ${keyword} in the same stage`);
        }
      }
    }
  },
};

export const dockerfileRules: Rule[] = [
  dockerUser,
  dockerBaseDigest,
  dockerRegistry,
  dockerAddUrl,
  dockerSecrets,
  dockerPackagePinning,
  dockerNoRecommends,
  dockerCurlPipe,
  dockerTls,
  dockerHealthcheck,
  dockerMultipleCmd,
];
