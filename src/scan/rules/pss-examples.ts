import { k8s, type RuleExample } from './rule.ts';

/**
 * Example pods for the Pod Security Standards rules: a restricted-clean pod, with pieces swapped in. The
 * PSA project's own fixtures are the conformance suite; these are the rules' own good and bad examples.
 */
export function pod(options: {
  podSecurity?: string;
  container?: string;
  spec?: string;
  annotations?: string;
  kind?: 'Pod' | 'Deployment';
}): RuleExample {
  const containerSecurity =
    options.container ?? '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}';
  const podSecurity = options.podSecurity ?? '{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}';
  const annotations = options.annotations ? `\n  annotations: ${options.annotations}` : '';
  const spec = `  securityContext: ${podSecurity}
  containers:
  - name: app
    image: registry.example.com/app@sha256:${'a'.repeat(64)}
    securityContext: ${containerSecurity}
${options.spec ?? ''}`;
  return k8s(`apiVersion: v1
kind: Pod
metadata:
  name: example
  namespace: shop${annotations}
spec:
${spec}`);
}
