import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { asArray, asObject, asString, isObject } from '../types.ts';
import type { ScanInputs } from './scan-inputs.ts';
import { InputError, sourceWithoutLines } from './yaml-source.ts';

/** The kinds read from a live cluster. Secrets are deliberately not read: their values never leave the API. */
const listed: { group: string; version: string; plural: string; kind: string; namespaced: boolean }[] = [
  ['', 'v1', 'namespaces', 'Namespace', false],
  ['', 'v1', 'pods', 'Pod', true],
  ['', 'v1', 'replicationcontrollers', 'ReplicationController', true],
  ['', 'v1', 'services', 'Service', true],
  ['', 'v1', 'serviceaccounts', 'ServiceAccount', true],
  ['', 'v1', 'configmaps', 'ConfigMap', true],
  ['', 'v1', 'resourcequotas', 'ResourceQuota', true],
  ['', 'v1', 'limitranges', 'LimitRange', true],
  ['apps', 'v1', 'deployments', 'Deployment', true],
  ['apps', 'v1', 'statefulsets', 'StatefulSet', true],
  ['apps', 'v1', 'daemonsets', 'DaemonSet', true],
  ['apps', 'v1', 'replicasets', 'ReplicaSet', true],
  ['batch', 'v1', 'jobs', 'Job', true],
  ['batch', 'v1', 'cronjobs', 'CronJob', true],
  ['networking.k8s.io', 'v1', 'networkpolicies', 'NetworkPolicy', true],
  ['networking.k8s.io', 'v1', 'ingresses', 'Ingress', true],
  ['policy', 'v1', 'poddisruptionbudgets', 'PodDisruptionBudget', true],
  ['rbac.authorization.k8s.io', 'v1', 'roles', 'Role', true],
  ['rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', true],
  ['rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', false],
  ['rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding', false],
].map(([group, version, plural, kind, namespaced]) => ({
  group: group as string,
  version: version as string,
  plural: plural as string,
  kind: kind as string,
  namespaced: namespaced as boolean,
}));

export interface ClusterOptions {
  namespaces: string[];
  pageSize?: number;
  kubeConfig?: KubeConfig;
}

async function getJson(kc: KubeConfig, url: URL): Promise<unknown> {
  const options: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(options);
  const client = url.protocol === 'http:' ? http : https;
  return await new Promise((resolve, reject) => {
    const request = client.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        if ((response.statusCode ?? 500) >= 400) {
          reject(new InputError(`cluster: GET ${url.pathname} answered ${response.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new InputError(`cluster: GET ${url.pathname} did not answer JSON`));
        }
      });
    });
    request.setTimeout(30_000, () =>
      request.destroy(new InputError(`cluster: GET ${url.pathname} timed out`)),
    );
    request.on('error', (error) =>
      reject(error instanceof InputError ? error : new InputError(`cluster: ${error.message}`)),
    );
    request.end();
  });
}

/** Objects that a controller in the same scan already describes (their pods would be counted twice). */
function ownedByController(item: Record<string, unknown>): boolean {
  return asArray(asObject(item['metadata'])['ownerReferences']).some(
    (owner) => asObject(owner)['controller'] === true,
  );
}

/**
 * Reads the live cluster of the current kubeconfig context through the Kubernetes API, page by page
 * (`limit` and `continue`), optionally only some namespaces.
 */
export async function readCluster(inputs: ScanInputs, options: ClusterOptions): Promise<void> {
  const kc = options.kubeConfig ?? new KubeConfig();
  if (!options.kubeConfig) {
    try {
      kc.loadFromDefault();
    } catch (error) {
      throw new InputError(`cluster: cannot load the kubeconfig (${(error as Error).message})`);
    }
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new InputError('cluster: the kubeconfig has no current cluster');
  const label = `cluster:${kc.getCurrentContext()}`;
  const pageSize = options.pageSize ?? 250;
  inputs.files.add(label);
  for (const type of listed) {
    const scopes = type.namespaced && options.namespaces.length > 0 ? options.namespaces : [undefined];
    for (const namespace of scopes) {
      const base = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
      const path = `${base}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${type.plural}`;
      let token: string | undefined;
      do {
        const url = new URL(cluster.server.replace(/\/$/, '') + path);
        url.searchParams.set('limit', String(pageSize));
        if (token) url.searchParams.set('continue', token);
        const list = asObject(await getJson(kc, url));
        for (const item of asArray(list['items'])) {
          if (!isObject(item)) continue;
          if (type.kind === 'Pod' || type.kind === 'ReplicaSet' || type.kind === 'Job') {
            if (ownedByController(item)) continue;
          }
          const metadata = asObject(item['metadata']);
          if (
            type.kind === 'Namespace' &&
            options.namespaces.length > 0 &&
            !options.namespaces.includes(asString(metadata['name']) ?? '')
          )
            continue;
          const object = {
            apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
            kind: type.kind,
            ...item,
          };
          const name = `${label}/${type.kind}/${asString(metadata['namespace']) ? `${asString(metadata['namespace'])}/` : ''}${asString(metadata['name'])}`;
          inputs.addDocument(object, sourceWithoutLines(name));
        }
        token = asString(asObject(list['metadata'])['continue']) || undefined;
      } while (token);
    }
  }
}
