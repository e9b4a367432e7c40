import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { renderHelm, renderKustomize } from './renderers.ts';
import { isDockerfileName, type ScanInputs } from './scan-inputs.ts';
import { InputError } from './yaml-source.ts';

export interface FileInputOptions {
  kubectl?: string;
  helm?: string;
  onFile?: (count: number) => void;
}

const skippedDirectories = new Set(['node_modules', '.git', '.cardhold', 'test-output']);
const kustomizationNames = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const yamlName = /\.(ya?ml|json)$/i;
const notManifests = new Set(['package.json', 'package-lock.json', 'tsconfig.json', 'biome.json']);

/**
 * Reads files and directories (recursively). A directory with a kustomization is rendered with
 * `kubectl kustomize`, a Helm chart with `helm template`; when the tool is missing the directory is
 * reported as not scanned, never skipped in silence. The file system calls are synchronous on purpose: a
 * scan reads thousands of small files one after another with nothing else to do meanwhile, and the
 * promise API costs about ten times their CPU time (and far more wall-clock time on a busy machine).
 */
export async function readPaths(
  paths: readonly string[],
  inputs: ScanInputs,
  options: FileInputOptions = {},
): Promise<void> {
  let count = 0;
  const visit = async (target: string, explicit: boolean): Promise<void> => {
    let info: ReturnType<typeof statSync>;
    try {
      info = statSync(target);
    } catch {
      throw new InputError(`${target}: no such file or directory`);
    }
    if (info.isDirectory()) {
      const entries = readdirSync(target);
      const kustomization = kustomizationNames.find((name) => entries.includes(name));
      if (kustomization || entries.includes('Chart.yaml')) {
        const rendered = kustomization
          ? await renderKustomize(target, options.kubectl)
          : await renderHelm(target, options.helm);
        if (rendered.ok)
          inputs.addYaml(rendered.yaml, `${target}${path.sep}(${kustomization ? 'kustomize' : 'helm'})`);
        else inputs.warnings.push(rendered.warning);
        return;
      }
      for (const entry of entries.sort()) {
        if (skippedDirectories.has(entry)) continue;
        await visit(path.join(target, entry), false);
      }
      return;
    }
    const name = path.basename(target);
    const dockerfile = isDockerfileName(name);
    if (!dockerfile && !yamlName.test(name) && !explicit) return;
    if (!explicit && notManifests.has(name)) return;
    const text = readFileSync(target, 'utf8');
    try {
      if (dockerfile) inputs.addDockerfile(text, target);
      else inputs.addYaml(text, target);
    } catch (error) {
      if (explicit || !(error instanceof InputError)) throw error;
      inputs.warnings.push(`${(error as Error).message}: NOT SCANNED`);
    }
    options.onFile?.(++count);
  };
  for (const target of paths) await visit(target, true);
}
