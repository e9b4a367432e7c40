import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkTotp,
  newTotpSecret,
  provisioningUri,
  secretFromUri,
  totpCode,
  totpParameters,
  totpStep,
} from './totp.ts';

const t0 = new Date('2031-03-04T05:06:15Z');
const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

test('the provisioning URI is what authenticator apps expect, and carries the secret', () => {
  const secret = newTotpSecret();
  assert.equal(secret.length, 20);
  const uri = provisioningUri(secret, 'ada.lovelace');
  assert.equal(String(uri), '[REDACTED]', 'the URI is a Secret');
  const url = new URL(uri.expose());
  assert.equal(url.protocol, 'otpauth:');
  assert.equal(url.host, 'totp');
  assert.equal(decodeURIComponent(url.pathname), '/cardhold:ada.lovelace');
  assert.equal(url.searchParams.get('issuer'), 'cardhold');
  assert.equal(url.searchParams.get('algorithm'), 'SHA1');
  assert.equal(url.searchParams.get('digits'), '6');
  assert.equal(url.searchParams.get('period'), '30');
  assert.match(url.searchParams.get('secret') ?? '', /^[A-Z2-7]{32}$/);
  assert.deepEqual(secretFromUri(uri.expose()), secret);
});

test('RFC 6238 test vector (SHA-1): the library computes the published code', () => {
  const secret = Buffer.from('12345678901234567890');
  // RFC 6238 Appendix B: T = 59 s gives 94287082 at 8 digits; at 6 digits, its last six.
  assert.equal(totpCode(secret, new Date(59_000)), '287082');
  assert.equal(totpParameters.digits, 6);
});

test('a code is accepted in its step and one step either side, not two', () => {
  const secret = newTotpSecret();
  const code = totpCode(secret, t0);
  const step = totpStep(t0);
  assert.deepEqual(checkTotp(secret, code, t0, null), { ok: true, step });
  assert.deepEqual(checkTotp(secret, code, at(30), null), { ok: true, step });
  assert.deepEqual(checkTotp(secret, code, at(-30), null), { ok: true, step });
  assert.equal(checkTotp(secret, code, at(60), null).ok, false);
  assert.equal(checkTotp(secret, code, at(-60), null).ok, false);
});

test('a code for the last step used, or an earlier one, is a replay', () => {
  const secret = newTotpSecret();
  const code = totpCode(secret, t0);
  const first = checkTotp(secret, code, t0, null);
  assert.ok(first.ok);
  assert.deepEqual(checkTotp(secret, code, t0, first.step), {
    ok: false,
    reason: 'totp_replayed',
    step: first.step,
  });
  // After a code for the next step was used, the (still in-window) current code is a replay too.
  const next = checkTotp(secret, totpCode(secret, at(30)), t0, first.step);
  assert.ok(next.ok);
  assert.equal(checkTotp(secret, code, at(1), next.step).ok, false);
  // The code of the step after that is fine.
  assert.ok(checkTotp(secret, totpCode(secret, at(60)), at(60), next.step).ok);
});

test('malformed and wrong codes are refused', () => {
  const secret = newTotpSecret();
  const code = totpCode(secret, t0);
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
  for (const bad of ['', '12345', '1234567', 'abcdef', wrong]) {
    assert.deepEqual(checkTotp(secret, bad, t0, null), { ok: false, reason: 'invalid_totp' });
  }
  assert.equal(checkTotp(newTotpSecret(), code, t0, null).ok, false, 'another secret');
  assert.ok(checkTotp(secret, `${code.slice(0, 3)} ${code.slice(3)}`, t0, null).ok, 'spaces allowed');
});
