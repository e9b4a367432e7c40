import { clusterConfigRules } from './cluster-config.ts';
import { dockerfileRules } from './dockerfile.ts';
import { imageRules } from './images.ts';
import { networkRules } from './network.ts';
import { baselineRules } from './pss-baseline.ts';
import { restrictedRules } from './pss-restricted.ts';
import { rbacRules } from './rbac.ts';
import type { Rule } from './rule.ts';
import { secretRules } from './secrets.ts';
import { workloadRules } from './workload-hardening.ts';

/** Every rule, in the order reports and docs/scanner.md list them. */
export const allRules: readonly Rule[] = [
  ...baselineRules,
  ...restrictedRules,
  ...workloadRules,
  ...imageRules,
  ...rbacRules,
  ...networkRules,
  ...secretRules,
  ...clusterConfigRules,
  ...dockerfileRules,
];

export function ruleById(id: string): Rule | undefined {
  return allRules.find((rule) => rule.id === id);
}
