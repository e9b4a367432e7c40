import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestPlatform, type TestPlatform } from '../../test/harness.ts';
import { runCli } from '../../test/run-cli.ts';

function cli(
  t: TestPlatform,
  args: string[],
  stdin: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(t.dataDir, args, { stdin });
}

describe('`cardhold operators bootstrap` (embedded)', () => {
  let t: TestPlatform;
  before(async () => {
    t = await startTestPlatform('embedded', 'operators-cli');
  });
  after(async () => t?.close());

  test('creates the first security administrator once, from a password on standard input', async () => {
    const password = 'First-admin-passw0rd';
    const weak = await cli(
      t,
      ['operators', 'bootstrap', '--username', 'first-admin', '--password-stdin'],
      'short\n',
    );
    assert.notEqual(weak.code, 0, 'a password against the policy is refused');
    assert.ok(!weak.stderr.includes('short'), 'the refused password is not echoed');

    const made = await cli(
      t,
      ['operators', 'bootstrap', '--username', 'first-admin', '--password-stdin'],
      `${password}\n`,
    );
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /security administrator first-admin \(opr_[0-9A-Za-z]{22}\) created/);

    const again = await cli(
      t,
      ['operators', 'bootstrap', '--username', 'second', '--password-stdin'],
      `${password}\n`,
    );
    assert.equal(again.code, 1);

    const login = await t.request<{ stage: string }>('POST', `${t.apiUrl}/v1/auth/login`, {
      key: null,
      body: { username: 'first-admin', password },
    });
    assert.equal(login.status, 200);
    assert.equal(login.json.stage, 'mfa_enrolment', 'TOTP is enrolled at the first sign-in');

    const records = await t.adminSql<{ action: string; actor_type: string; text: string }[]>`
      select action, actor_type, row_to_json(r)::text as text from audit.records r where action like 'operator.%'`;
    assert.ok(records.some((r) => r.action === 'operator.create' && r.actor_type === 'user'));
    assert.ok(
      records.every((r) => !r.text.includes(password)),
      'no password in the trail',
    );
  });

  test('merchants, keys, operators and roles from the command line, each change recorded with the OS user', async () => {
    const json = async <T>(args: string[], stdin = '') => {
      const result = await cli(t, args, stdin);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      return JSON.parse(result.stdout) as T;
    };
    const made = await json<{ merchant: { id: string }; api_key: { id: string; secret: string } }>([
      'merchants',
      'create',
      '--name',
      'Command Line Ltd',
    ]);
    assert.match(made.merchant.id, /^mer_/);
    assert.match(made.api_key.secret, /^sk_test_/);
    const pk = await json<{ id: string; kind: string; secret: string; allowed_origins: string[] }>([
      'keys',
      'issue',
      '--merchant',
      made.merchant.id,
      '--publishable',
      '--origin',
      'https://shop.example',
    ]);
    assert.equal(pk.kind, 'publishable');
    assert.match(pk.secret, /^pk_test_/);
    assert.deepEqual(pk.allowed_origins, ['https://shop.example']);
    const successor = await json<{ id: string }>([
      'keys',
      'rotate',
      '--merchant',
      made.merchant.id,
      '--key',
      made.api_key.id,
      '--overlap-seconds',
      '0',
    ]);
    assert.notEqual(successor.id, made.api_key.id);
    const revoked = await json<{ revoked_at: string | null }>([
      'keys',
      'revoke',
      '--merchant',
      made.merchant.id,
      '--key',
      pk.id,
    ]);
    assert.ok(revoked.revoked_at);
    const shown = await json<{ api_keys: Array<{ id: string; rotated_to: string | null }> }>([
      'merchants',
      'show',
      made.merchant.id,
    ]);
    assert.equal(shown.api_keys.find((k) => k.id === made.api_key.id)?.rotated_to, successor.id);
    assert.ok(!JSON.stringify(shown).includes(made.api_key.secret), 'secrets are never listed');

    const operator = await json<{ id: string; roles: string[]; password_change_required: boolean }>(
      ['operators', 'create', '--username', 'helpdesk', '--role', 'operator-support', '--password-stdin'],
      'Helpdesk-passw0rd-1\n',
    );
    assert.deepEqual(operator.roles, ['operator-support']);
    assert.equal(operator.password_change_required, true);
    const locked = await json<{ id: string }>(['operators', 'disable', operator.id]);
    assert.equal(locked.id, operator.id);

    const roles = await cli(t, ['roles'], '');
    assert.match(roles.stdout, /^operator-reveal\s+merchants:read tokens:read tokens:reveal$/m);
    assert.match(roles.stdout, /^security-admin\s+/m);

    const actions = await t.adminSql<{ action: string }[]>`
      select action from audit.records where service = 'cli' and actor_type = 'user' order by seq`;
    const seen = new Set(actions.map((r) => r.action));
    for (const action of [
      'merchant.create',
      'api_key.create',
      'api_key.rotate',
      'api_key.revoke',
      'operator.create',
      'operator.disable',
    ]) {
      assert.ok(seen.has(action), `${action} is recorded`);
    }
  });
});
