import { findPans, luhnValid, maskPan } from '../../shared/pan-detect.ts';
import { asArray, asObject, asString } from '../types.ts';
import { eachContainer } from './pss-baseline.ts';
import { atContainer, atResource, compose, k8s, type Rule } from './rule.ts';
import { isLiteralValue, isSecretLikeName, isSecretLikeValue } from './secret-patterns.ts';

/** Secrets committed in manifests: env literals, ConfigMaps, Secret objects with values, and card numbers. */

const secretsMapping = {
  pci: { '8.6.2': 'direct', '8.3.2': 'supporting', '3.6.1': 'supporting' },
  guidance: { '6.1': 'direct', '12.4': 'supporting' },
} as const;

export const envLiteral: Rule = {
  id: 'secrets.env-literal',
  title: 'No credentials as literal environment values',
  severity: 'high',
  family: 'secrets',
  rationale:
    'A password in a manifest or Compose file is readable by everyone with the repository or the API object.',
  remediation:
    'Take the value from a secrets manager (a mounted Secret file, secretKeyRef, Compose secrets) instead of a literal.',
  mapping: secretsMapping,
  examples: {
    good: [
      k8s(
        `apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n  - name: app\n    image: app:1.0\n    env: [{name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}]\n`,
      ),
      compose(
        `services:\n  db:\n    image: postgres:17\n    environment: {POSTGRES_PASSWORD_FILE: /run/secrets/db}\n`,
      ),
    ],
    bad: [
      k8s(
        `apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n  - name: app\n    image: app:1.0\n    env: [{name: DB_PASSWORD, value: hunter2hunter2}]\n`,
      ),
      compose(
        `services:\n  db:\n    image: postgres:17\n    environment:\n      POSTGRES_PASSWORD: hunter2hunter2\n`,
      ),
    ],
  },
  *check({ workloads }) {
    for (const { workload, container } of eachContainer(workloads)) {
      const env = asArray(container.spec['env']);
      for (let index = 0; index < env.length; index++) {
        const entry = asObject(env[index]);
        const name = asString(entry['name']) ?? '';
        const value = asString(entry['value']);
        if (value === undefined || !isLiteralValue(value)) continue;
        if (isSecretLikeName(name) || isSecretLikeValue(value)) {
          const path = workload.resource.origin === 'compose' ? ['env'] : ['env', index, 'value'];
          const finding = atContainer(
            workload,
            container,
            path,
            `${container.name} sets ${name} to a literal credential`,
          );
          if (workload.resource.origin === 'compose') finding.path = [...finding.path, name];
          yield finding;
        }
      }
    }
  },
};

export const configMapSecrets: Rule = {
  id: 'secrets.configmap',
  title: 'ConfigMaps hold no credentials',
  severity: 'high',
  family: 'secrets',
  rationale: 'ConfigMaps are not access-controlled like Secrets and are often printed, logged and copied.',
  remediation: 'Move the value into a secrets manager; keep only non-secret configuration in ConfigMaps.',
  mapping: secretsMapping,
  examples: {
    good: [
      k8s(
        `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {LOG_LEVEL: info, TOKEN_TTL_SECONDS_NAME: ttl}\n`,
      ),
    ],
    bad: [k8s(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {api_key: s3cr3t-v4lue-123}\n`)],
  },
  *check({ resources }) {
    for (const resource of resources) {
      if (resource.kind !== 'ConfigMap') continue;
      for (const [key, value] of Object.entries(asObject(resource.body['data']))) {
        const text = String(value ?? '');
        if ((isSecretLikeName(key) && isLiteralValue(text)) || isSecretLikeValue(text)) {
          yield atResource(
            resource,
            ['data', key],
            `ConfigMap ${resource.name} key ${key} looks like a credential`,
          );
        }
      }
    }
  },
};

export const secretManifest: Rule = {
  id: 'secrets.manifest-values',
  title: 'Secret manifests carry no committed values',
  severity: 'high',
  family: 'secrets',
  rationale: 'base64 is not encryption: a Secret with data in git is a plaintext credential in git history.',
  remediation:
    'Deliver Secrets from a secrets manager (External Secrets, Sealed Secrets, a CSI secret store), not from manifests.',
  mapping: secretsMapping,
  examples: {
    good: [k8s(`apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: Opaque\n`)],
    bad: [
      k8s(`apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2hunter2}\n`),
    ],
  },
  *check({ resources }) {
    for (const resource of resources) {
      if (resource.kind !== 'Secret' || resource.source.file.startsWith('cluster:')) continue;
      for (const field of ['data', 'stringData']) {
        const keys = Object.keys(asObject(resource.body[field]));
        if (keys.length > 0)
          yield atResource(
            resource,
            [field],
            `Secret ${resource.name} commits ${field} values (${keys.join(', ')})`,
          );
      }
    }
  },
};

/** A text can hold a card number only if it has 13 digits joined by at most single separators. */
const panCandidate = /\d(?:[ -]?\d){12}/;

/**
 * Calls `found` for every string value of an object tree (and integer beyond 1e12) that holds a card
 * number, depth first in key order, with its path; the path is copied only for a hit.
 */
function eachPan(
  value: unknown,
  found: (path: (string | number)[], digits: string) => void,
  path: (string | number)[] = [],
): void {
  const text =
    typeof value === 'string'
      ? value
      : typeof value === 'number' && Number.isInteger(value) && value > 1e12
        ? String(value)
        : undefined;
  if (text !== undefined) {
    const match = panCandidate.test(text) ? findPans(text)[0] : undefined;
    if (match) found([...path], match.digits);
  } else if (Array.isArray(value))
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      eachPan(value[i], found, path);
      path.pop();
    }
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) {
      path.push(k);
      eachPan(v, found, path);
      path.pop();
    }
}

/** The published Visa test card, built from its prefix so that no card-number literal sits in src/. */
function exampleTestCard(): string {
  const prefix = '4111'.repeat(3) + '111';
  for (let digit = 0; digit <= 9; digit++)
    if (luhnValid(prefix + digit)) return `${prefix}${digit}`.replace(/(\d{4})(?=\d)/g, '$1 ');
  return prefix;
}

export const cardNumbers: Rule = {
  id: 'secrets.card-number',
  title: 'No card numbers in manifests',
  severity: 'critical',
  family: 'secrets',
  rationale:
    'A card number in configuration puts cardholder data outside the vault, in repositories and the API server.',
  remediation:
    'Remove the card number (and purge it from history); use a token or a published test card in test-only files.',
  mapping: { pci: { '3.2.1': 'direct', '3.5.1': 'direct' }, guidance: { '6.1': 'supporting' } },
  examples: {
    good: [k8s(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {card_token: tok_4Jx9abc}\n`)],
    bad: [
      k8s(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {card: "${exampleTestCard()}"}\n`),
    ],
  },
  *check({ resources }) {
    for (const resource of resources) {
      if (
        resource.kind !== 'ConfigMap' &&
        resource.kind !== 'Secret' &&
        resource.origin !== 'compose' &&
        ![
          'Pod',
          'Deployment',
          'StatefulSet',
          'DaemonSet',
          'Job',
          'CronJob',
          'ReplicaSet',
          'ReplicationController',
        ].includes(resource.kind)
      )
        continue;
      const hits: { path: (string | number)[]; digits: string }[] = [];
      eachPan(resource.body, (path, digits) => hits.push({ path, digits }));
      for (const { path, digits } of hits)
        yield atResource(
          resource,
          path,
          `${resource.kind} ${resource.name} contains a card number (${maskPan(digits)})`,
        );
    }
  },
};

export const secretRules: Rule[] = [envLiteral, configMapSecrets, secretManifest, cardNumbers];
