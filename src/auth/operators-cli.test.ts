import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestPlatform, type TestPlatform } from '../../test/harness.ts';

function cli(
  t: TestPlatform,
  args: string[],
  stdin: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve('bin/cardhold.js'), ...args], {
      env: { ...process.env, CARDHOLD_DATA_DIR: t.dataDir, CARDHOLD_LOG_LEVEL: 'silent' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
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
});
