import type { Resource } from '../model.ts';
import { asArray, asObject, asString } from '../types.ts';
import { atResource, k8s, type RawFinding, type Rule } from './rule.ts';

/** RBAC: what Roles and ClusterRoles grant, and to whom bindings grant it. */

const rbacMapping = {
  pci: { '7.2.1': 'direct', '7.2.2': 'direct', '7.2.5': 'supporting' },
  guidance: { '2.1': 'direct', '2.3': 'supporting' },
} as const;

interface PolicyRule {
  index: number;
  verbs: string[];
  resources: string[];
  apiGroups: string[];
}

function policyRules(role: Resource): PolicyRule[] {
  return asArray(role.body['rules']).map((rule, index) => {
    const value = asObject(rule);
    return {
      index,
      verbs: asArray(value['verbs']).map(String),
      resources: asArray(value['resources']).map(String),
      apiGroups: asArray(value['apiGroups']).map(String),
    };
  });
}

function* roles(resources: readonly Resource[]) {
  for (const resource of resources) {
    if (resource.kind === 'Role' || resource.kind === 'ClusterRole') yield resource;
  }
}

const role = (rules: string, kind = 'ClusterRole') =>
  k8s(
    `apiVersion: rbac.authorization.k8s.io/v1\nkind: ${kind}\nmetadata: {name: example${kind === 'Role' ? ', namespace: shop' : ''}}\nrules:\n${rules}`,
  );
const binding = (roleName: string, subject: string, kind = 'ClusterRoleBinding') =>
  k8s(
    `apiVersion: rbac.authorization.k8s.io/v1\nkind: ${kind}\nmetadata: {name: example${kind === 'RoleBinding' ? ', namespace: shop' : ''}}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ${roleName}}\nsubjects: [${subject}]\n`,
  );

function grantRule(base: Omit<Rule, 'check'>, matches: (rule: PolicyRule) => string | undefined): Rule {
  return {
    ...base,
    *check({ resources }) {
      for (const resource of roles(resources)) {
        for (const rule of policyRules(resource)) {
          const what = matches(rule);
          if (what)
            yield atResource(resource, ['rules', rule.index], `${resource.kind} ${resource.name} ${what}`);
        }
      }
    },
  };
}

const hasVerb = (rule: PolicyRule, verbs: string[]) =>
  rule.verbs.some((verb) => verb === '*' || verbs.includes(verb));
const hasResource = (rule: PolicyRule, names: string[]) =>
  rule.resources.some((name) => name === '*' || names.includes(name));

export const wildcards = grantRule(
  {
    id: 'rbac.wildcard',
    title: 'Roles do not use wildcards',
    severity: 'high',
    family: 'rbac',
    rationale:
      'A wildcard grants every verb, resource or group, including ones added later: the opposite of least privilege.',
    remediation: 'List the verbs, resources and API groups the subject needs.',
    mapping: rbacMapping,
    examples: {
      good: [role('- {apiGroups: [""], resources: [configmaps], verbs: [get, list]}')],
      bad: [
        role('- {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}'),
        role('- {apiGroups: [apps], resources: [deployments], verbs: ["*"]}'),
      ],
    },
  },
  (rule) => {
    const fields = (['verbs', 'resources', 'apiGroups'] as const).filter((field) =>
      rule[field].includes('*'),
    );
    return fields.length > 0 ? `grants a wildcard in ${fields.join(', ')}` : undefined;
  },
);

export const secretsAccess = grantRule(
  {
    id: 'rbac.secrets-access',
    title: 'Roles do not read Secrets broadly',
    severity: 'high',
    family: 'rbac',
    rationale:
      'get/list/watch on Secrets reveals every credential in scope, including service account tokens.',
    remediation: 'Remove secrets from the rule, or restrict it with resourceNames to the one Secret needed.',
    mapping: {
      pci: { '7.2.1': 'direct', '7.2.2': 'direct', '8.6.3': 'supporting' },
      guidance: { '2.1': 'direct', '6.1': 'supporting' },
    },
    examples: {
      good: [role('- {apiGroups: [""], resources: [configmaps], verbs: [get]}')],
      bad: [role('- {apiGroups: [""], resources: [secrets], verbs: [get, list, watch]}')],
    },
  },
  (rule) =>
    hasResource(rule, ['secrets']) &&
    hasVerb(rule, ['get', 'list', 'watch']) &&
    rule.apiGroups.some((g) => g === '' || g === '*')
      ? 'can read Secrets'
      : undefined,
);

export const execAttach = grantRule(
  {
    id: 'rbac.exec-attach',
    title: 'Roles do not grant exec, attach or pod creation',
    severity: 'high',
    family: 'rbac',
    rationale:
      'pods/exec and pods/attach open a shell in any pod in scope; creating pods can mount any Secret or service account.',
    remediation: 'Remove pods/exec, pods/attach and create on pods; use audited break-glass access instead.',
    mapping: rbacMapping,
    examples: {
      good: [role('- {apiGroups: [""], resources: [pods, pods/log], verbs: [get, list]}')],
      bad: [
        role('- {apiGroups: [""], resources: [pods/exec], verbs: [create]}'),
        role('- {apiGroups: [""], resources: [pods], verbs: [create]}'),
      ],
    },
  },
  (rule) => {
    if (hasResource(rule, ['pods/exec', 'pods/attach']) && hasVerb(rule, ['create', 'get']))
      return 'grants exec or attach into pods';
    if (rule.resources.includes('pods') && hasVerb(rule, ['create'])) return 'can create pods';
    if (hasResource(rule, ['nodes/proxy']) && hasVerb(rule, ['get', 'create']))
      return 'can proxy to kubelets (nodes/proxy)';
    return undefined;
  },
);

export const escalationVerbs = grantRule(
  {
    id: 'rbac.escalation-verbs',
    title: 'Roles do not grant bind, escalate or impersonate',
    severity: 'critical',
    family: 'rbac',
    rationale:
      'bind and escalate let a subject grant itself any role; impersonate lets it act as any user or group.',
    remediation: 'Remove these verbs; reserve them for cluster administrators with MFA and review.',
    mapping: rbacMapping,
    examples: {
      good: [role('- {apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [get, list]}')],
      bad: [
        role(
          '- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind, escalate]}',
        ),
        role('- {apiGroups: [""], resources: [users, groups], verbs: [impersonate]}'),
      ],
    },
  },
  (rule) => {
    const verbs = rule.verbs.filter(
      (verb) => verb === 'bind' || verb === 'escalate' || verb === 'impersonate',
    );
    return verbs.length > 0 ? `grants ${verbs.join(', ')}` : undefined;
  },
);

function* bindings(resources: readonly Resource[]) {
  for (const resource of resources) {
    if (resource.kind === 'RoleBinding' || resource.kind === 'ClusterRoleBinding') yield resource;
  }
}

export const clusterAdminBinding: Rule = {
  id: 'rbac.cluster-admin-binding',
  title: 'Nothing is bound to cluster-admin',
  severity: 'critical',
  family: 'rbac',
  rationale:
    'cluster-admin can do anything anywhere; a binding to it makes its subjects owners of the whole cluster and the CDE.',
  remediation:
    'Bind a role with only the needed rights; keep cluster-admin for break-glass use outside manifests.',
  mapping: {
    pci: { '7.2.1': 'direct', '7.2.2': 'direct', '7.2.5': 'direct' },
    guidance: { '2.1': 'direct', '16.4': 'supporting' },
  },
  examples: {
    good: [binding('view', '{kind: ServiceAccount, name: reporter, namespace: shop}', 'RoleBinding')],
    bad: [binding('cluster-admin', '{kind: ServiceAccount, name: deployer, namespace: ci}')],
  },
  *check({ resources }) {
    for (const resource of bindings(resources)) {
      if (asString(asObject(resource.body['roleRef'])['name']) === 'cluster-admin') {
        yield atResource(
          resource,
          ['roleRef', 'name'],
          `${resource.kind} ${resource.name} binds cluster-admin`,
        );
      }
    }
  },
};

const systemGroups = new Set([
  'system:masters',
  'system:anonymous',
  'system:unauthenticated',
  'system:authenticated',
]);

export const systemGroupBinding: Rule = {
  id: 'rbac.system-group-binding',
  title: 'No bindings to system:masters, anonymous or all authenticated users',
  severity: 'critical',
  family: 'rbac',
  rationale:
    'system:masters cannot be revoked through RBAC; anonymous and system:authenticated reach everyone who can connect.',
  remediation: 'Bind named users, groups from your identity provider, or service accounts instead.',
  mapping: {
    pci: { '7.2.1': 'direct', '8.2.1': 'supporting', '8.3.1': 'supporting' },
    guidance: { '2.2': 'direct', '1.1': 'supporting' },
  },
  examples: {
    good: [binding('view', '{kind: Group, name: payments-sre, apiGroup: rbac.authorization.k8s.io}')],
    bad: [
      binding('view', '{kind: Group, name: "system:authenticated", apiGroup: rbac.authorization.k8s.io}'),
      binding('edit', '{kind: User, name: "system:anonymous", apiGroup: rbac.authorization.k8s.io}'),
    ],
  },
  *check({ resources }) {
    for (const resource of bindings(resources)) {
      const subjects = asArray(resource.body['subjects']);
      const found: RawFinding[] = [];
      for (let index = 0; index < subjects.length; index++) {
        const name = asString(asObject(subjects[index])['name']) ?? '';
        if (systemGroups.has(name))
          found.push(
            atResource(
              resource,
              ['subjects', index, 'name'],
              `${resource.kind} ${resource.name} binds ${name}`,
            ),
          );
      }
      yield* found;
    }
  },
};

export const rbacRules: Rule[] = [
  wildcards,
  clusterAdminBinding,
  secretsAccess,
  execAttach,
  escalationVerbs,
  systemGroupBinding,
];
