import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type RenderResult = { ok: true; yaml: string } | { ok: false; warning: string };

async function available(command: string): Promise<boolean> {
  try {
    await run(command, command === 'kubectl' ? ['version', '--client'] : ['version'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** `kubectl kustomize DIR` (offline): the rendered objects replace the directory's raw files. */
export async function renderKustomize(directory: string, kubectl = 'kubectl'): Promise<RenderResult> {
  if (!(await available(kubectl))) {
    return {
      ok: false,
      warning: `${directory}: a Kustomize directory, but ${kubectl} is not installed: NOT SCANNED (install kubectl to render it)`,
    };
  }
  try {
    const { stdout } = await run(kubectl, ['kustomize', directory], {
      maxBuffer: 256 * 1024 * 1024,
      timeout: 120_000,
    });
    return { ok: true, yaml: stdout };
  } catch (error) {
    const detail = ((error as { stderr?: string }).stderr ?? '').trim().split('\n')[0] ?? '';
    return { ok: false, warning: `${directory}: kubectl kustomize failed: NOT SCANNED (${detail})` };
  }
}

/** `helm template DIR`: rendered with the chart's default values. */
export async function renderHelm(directory: string, helm = 'helm'): Promise<RenderResult> {
  if (!(await available(helm))) {
    return {
      ok: false,
      warning: `${directory}: a Helm chart, but ${helm} is not installed: NOT SCANNED (install helm to render it)`,
    };
  }
  try {
    const { stdout } = await run(helm, ['template', directory], {
      maxBuffer: 256 * 1024 * 1024,
      timeout: 120_000,
    });
    return { ok: true, yaml: stdout };
  } catch (error) {
    const detail = ((error as { stderr?: string }).stderr ?? '').trim().split('\n')[0] ?? '';
    return { ok: false, warning: `${directory}: helm template failed: NOT SCANNED (${detail})` };
  }
}
