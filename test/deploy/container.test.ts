import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { Agent, fetch } from 'undici';
import { developmentLogins } from '../../src/platform/platform.ts';
import { testCards } from '../fixtures/cards.ts';
import { dumpDatabase, futureYear } from '../harness.ts';
import { buildTestImage, hardeningOptions, podman, podmanAvailable, runtimeOptions } from './podman.ts';

/**
 * The image, for real: the vault role runs in it read-only, as uid 65532, with every capability dropped
 * and no-new-privileges, and tokenizes a card over HTTPS. Development mode against the host's PostgreSQL
 * (a fresh database; the process migrates it and mints its own per-role logins), through --network host.
 */
const root = path.resolve(import.meta.dirname, '../..');
const hasPodman = await podmanAvailable();
// CI (or .ci/run, which requires every external dependency) makes a missing podman a failure.
const inCi = process.env['CI'] === 'true' || process.env['CARDHOLD_TEST_REQUIRE_EXTERNAL'] === '1';
const skip = !hasPodman && !inCi ? 'podman is not installed (apt-get install podman buildah runc)' : false;
const adminUrl = process.env['CARDHOLD_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

describe('the cardhold image runs the vault hardened', { skip, timeout: 600_000 }, () => {
  const database = `cardhold_container_${randomBytes(4).toString('hex')}`;
  const name = `cardhold-test-vault-${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  const databaseUrl = Object.assign(new URL(adminUrl), { pathname: `/${database}` }).toString();
  let image = '';
  let port = 0;
  let started = false;

  before(async () => {
    // Under CI a missing podman is a failure, never a skip.
    assert.ok(hasPodman, 'podman is required in CI (.ci/run installs it)');
    image = await buildTestImage(root, process.execPath);
    await admin.unsafe(`CREATE DATABASE ${database}`);
    port = await freePort();
  });

  after(async () => {
    if (started) {
      const logs = await podman(['logs', name]).catch(() => '');
      await mkdir(path.join(root, 'test-output', 'logs'), { recursive: true });
      await writeFile(path.join(root, 'test-output', 'logs', 'container-vault.log'), logs);
      await podman(['rm', '--force', '--time', '5', name]).catch(() => '');
    }
    await dumpDatabase(databaseUrl, 'container-vault').catch(() => {});
    await admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    for (const login of developmentLogins(database)) await admin.unsafe(`DROP ROLE IF EXISTS ${login}`);
    await admin.end();
  });

  it('tokenizes a card through the container over HTTPS and stops cleanly', async () => {
    await podman([
      'run',
      '--detach',
      '--name',
      name,
      ...runtimeOptions,
      ...hardeningOptions,
      '--network',
      'host',
      // The only writable path: the data directory (development CA and key, control sockets), in memory.
      '--tmpfs',
      '/var/lib/cardhold:rw,noexec,nosuid,nodev,size=64m,mode=1777',
      '--env',
      `CARDHOLD_DATABASE_URL=${databaseUrl}`,
      '--env',
      'CARDHOLD_HOST=127.0.0.1',
      '--env',
      `CARDHOLD_VAULT_PORT=${port}`,
      '--env',
      'CARDHOLD_VAULT_METRICS_PORT=0',
      image,
      'vault',
    ]);
    started = true;

    // The container really is what the options asked for.
    const inspected = JSON.parse(await podman(['inspect', name]))[0];
    assert.equal(inspected.Config.User, '65532:65532');
    assert.equal(inspected.HostConfig.ReadonlyRootfs, true);
    assert.ok(inspected.HostConfig.SecurityOpt.includes('no-new-privileges'));
    assert.deepEqual(inspected.EffectiveCaps ?? [], []);

    // Ready when the image's own health check passes.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const healthy = await podman(['exec', name, '/nodejs/bin/node', '/app/healthcheck.js']).then(
        () => true,
        () => false,
      );
      if (healthy) break;
      if (Date.now() > deadline)
        assert.fail(`the vault did not become healthy:\n${await podman(['logs', name])}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }

    // The root filesystem refuses writes, for the service's own user.
    await assert.rejects(
      podman(['exec', name, '/nodejs/bin/node', '-e', 'require("fs").writeFileSync("/app/x", "x")']),
      /EROFS|read-only/,
    );

    // The CLI in the same image creates a merchant (the process's environment, the same database and key).
    const created = JSON.parse(
      await podman([
        'exec',
        '--env',
        'CARDHOLD_LOG_LEVEL=silent',
        name,
        '/nodejs/bin/node',
        '/app/bin/cardhold.js',
        'merchants',
        'create',
        '--name',
        'Container test',
      ]),
    ) as { api_key: { secret: string } };
    const ca = await podman([
      'exec',
      name,
      '/nodejs/bin/node',
      '-e',
      'process.stdout.write(require("fs").readFileSync("/var/lib/cardhold/tls/ca.crt"))',
    ]);
    assert.match(ca, /BEGIN CERTIFICATE/);

    const agent = new Agent({ connect: { ca } });
    try {
      const response = await fetch(`https://127.0.0.1:${port}/v1/tokens`, {
        method: 'POST',
        dispatcher: agent,
        headers: { authorization: `Bearer ${created.api_key.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ pan: testCards.visa, exp_month: 12, exp_year: futureYear }),
      });
      const body = (await response.json()) as { token: { id: string; last4: string; brand: string } };
      assert.equal(response.status, 201);
      assert.match(body.token.id, /^tok_/);
      assert.equal(body.token.last4, '4242');
      assert.equal(body.token.brand, 'visa');
      // The row holds ciphertext: the database has the token, never the number.
      const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
      try {
        const rows = await sql`SELECT count(*)::int AS n FROM vault.tokens`;
        assert.equal(rows[0]?.['n'], 1);
      } finally {
        await sql.end();
      }
    } finally {
      await agent.close();
    }

    // SIGTERM drains and exits 0.
    await podman(['stop', '--time', '20', name]);
    const state = JSON.parse(await podman(['inspect', name]))[0].State;
    assert.equal(state.ExitCode, 0);
    assert.match(await podman(['logs', name]), /cardhold: stopped/);
  });
});
