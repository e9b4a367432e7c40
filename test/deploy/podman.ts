import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * podman as this machine kind runs it: runc (crun fails on rlimits and cgroups here) with explicit
 * rlimits. Every container the tests run goes through these options.
 */
export const runtimeOptions = [
  '--runtime',
  'runc',
  '--ulimit',
  'nofile=20000:20000',
  '--ulimit',
  'nproc=32768:32768',
];

/** The hardening every cardhold container runs with (what compose.yaml and the Pod spec also say). */
export const hardeningOptions = [
  '--read-only',
  '--user',
  '65532:65532',
  '--cap-drop',
  'ALL',
  '--security-opt',
  'no-new-privileges',
];

export async function podman(args: string[], timeout = 300_000): Promise<string> {
  const { stdout } = await execFileAsync('podman', args, { timeout, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export async function podmanAvailable(): Promise<boolean> {
  try {
    await execFileAsync('podman', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** What decides the image's content: a rebuild happens only when one of these changes. */
async function imageInputs(root: string): Promise<string[]> {
  const files = ['deploy/Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json'];
  for (const dir of ['src', 'deploy/image']) {
    for (const entry of await readdir(path.join(root, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || entry.name.endsWith('.test.ts')) continue;
      files.push(path.relative(root, path.join(entry.parentPath, entry.name)));
    }
  }
  return files.sort();
}

export async function contentHash(root: string, extra: string): Promise<string> {
  const hash = createHash('sha256').update(extra);
  for (const file of await imageInputs(root)) {
    hash
      .update(file)
      .update('\0')
      .update(await readFile(path.join(root, file)))
      .update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * Builds the cardhold image as the machines allow: the runtime base is the local stand-in for
 * distroless (deploy/local-base/build.sh), and the application tree comes from deploy/image/assemble.sh
 * run on this host (APP_SOURCE=prebuilt), because no builder image can be pulled. The runtime stage is
 * the Dockerfile's own. Reused while the content hash is unchanged.
 */
export async function buildTestImage(root: string, nodeBinary: string): Promise<string> {
  const base = (
    await execFileAsync(path.join(root, 'deploy/local-base/build.sh'), [nodeBinary], { timeout: 120_000 })
  ).stdout.trim();
  const baseId = (await podman(['image', 'inspect', '--format', '{{.Id}}', base])).trim();
  const tag = `localhost/cardhold:test-${await contentHash(root, baseId)}`;
  const exists = await execFileAsync('podman', ['image', 'exists', tag]).then(
    () => true,
    () => false,
  );
  if (exists) return tag;
  await execFileAsync(
    'sh',
    [path.join(root, 'deploy/image/assemble.sh'), root, path.join(root, '.image-app')],
    {
      cwd: root,
      timeout: 300_000,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  await podman(
    [
      'build',
      '--format',
      'docker',
      ...runtimeOptions.slice(0, 2),
      '--network',
      'none',
      '--build-arg',
      `RUNTIME_BASE=${base}`,
      '--build-arg',
      `BUILDER_IMAGE=${base}`,
      '--build-arg',
      'APP_SOURCE=prebuilt',
      '--file',
      path.join(root, 'deploy/Dockerfile'),
      '--tag',
      tag,
      root,
    ],
    600_000,
  );
  return tag;
}
