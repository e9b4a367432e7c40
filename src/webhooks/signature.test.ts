import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { newSigningSecret } from './identifiers.ts';
import { signWebhook, verifyWebhookSignature, type WebhookSignatureFailure } from './signature.ts';
import { assertWebhookUrl, isInternalAddress, publicOnlyLookup } from './url-policy.ts';

const body = JSON.stringify({ id: 'evt_1', object: 'event', type: 'payment_intent.succeeded', created: 1 });
const now = 1_750_000_000;

const failsWith = (reason: WebhookSignatureFailure, run: () => void) =>
  assert.throws(run, (error: unknown) => {
    assert.equal((error as { name: string }).name, 'WebhookSignatureError');
    assert.equal((error as { reason: string }).reason, reason);
    return true;
  });

describe('webhook signatures', () => {
  test('the header is t and one v1 per secret, each HMAC-SHA256(secret, t + "." + body) in hex', () => {
    const header = signWebhook(body, ['whsec_a', 'whsec_b'], now);
    const expected = (secret: string) => createHmac('sha256', secret).update(`${now}.${body}`).digest('hex');
    assert.equal(header, `t=${now},v1=${expected('whsec_a')},v1=${expected('whsec_b')}`);
  });

  test('round trip: what is signed verifies, from a string or the raw bytes', () => {
    const secret = newSigningSecret().expose();
    assert.match(secret, /^whsec_[0-9A-Za-z]{43}$/);
    const header = signWebhook(body, [secret], now);
    verifyWebhookSignature(body, header, secret, { now });
    verifyWebhookSignature(Buffer.from(body), header, secret, { now: now + 299 });
  });

  test('during a rotation either secret verifies; a third does not', () => {
    const header = signWebhook(body, ['whsec_new', 'whsec_old'], now);
    verifyWebhookSignature(body, header, 'whsec_new', { now });
    verifyWebhookSignature(body, header, 'whsec_old', { now });
    failsWith('no_matching_signature', () => verifyWebhookSignature(body, header, 'whsec_other', { now }));
  });

  test('a changed body, or a changed timestamp, is rejected', () => {
    const header = signWebhook(body, ['whsec_a'], now);
    failsWith('no_matching_signature', () =>
      verifyWebhookSignature(body.replace('succeeded', 'failed'), header, 'whsec_a', { now }),
    );
    failsWith('no_matching_signature', () =>
      verifyWebhookSignature(body, header.replace(`t=${now}`, `t=${now + 1}`), 'whsec_a', { now }),
    );
  });

  test('a timestamp more than 300 s away is rejected; the tolerance can be set', () => {
    const header = signWebhook(body, ['whsec_a'], now);
    verifyWebhookSignature(body, header, 'whsec_a', { now: now + 300 });
    failsWith('timestamp_outside_tolerance', () =>
      verifyWebhookSignature(body, header, 'whsec_a', { now: now + 301 }),
    );
    failsWith('timestamp_outside_tolerance', () =>
      verifyWebhookSignature(body, header, 'whsec_a', { now: now - 301 }),
    );
    failsWith('timestamp_outside_tolerance', () =>
      verifyWebhookSignature(body, header, 'whsec_a', { now: now + 61, toleranceSeconds: 60 }),
    );
    // The default clock: a header signed an hour ago is too old.
    const old = signWebhook(body, ['whsec_a'], Math.floor(Date.now() / 1000) - 3600);
    failsWith('timestamp_outside_tolerance', () => verifyWebhookSignature(body, old, 'whsec_a'));
  });

  test('misuse is an error, never a pass: an empty secret, a tolerance or a clock that is not a finite number', () => {
    // What anyone can compute: the HMAC under an empty key.
    const forged = signWebhook(body, [''], now);
    assert.throws(() => verifyWebhookSignature(body, forged, '', { now }), TypeError);
    const old = signWebhook(body, ['whsec_a'], now - 55 * 365 * 86_400);
    for (const toleranceSeconds of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      assert.throws(() => verifyWebhookSignature(body, old, 'whsec_a', { now, toleranceSeconds }), TypeError);
    }
    // A clock that is not a number (NaN compares false with everything) would accept any timestamp.
    for (const badNow of [Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => verifyWebhookSignature(body, old, 'whsec_a', { now: badNow }), TypeError);
    }
  });

  test('malformed headers are rejected as such', () => {
    const v1 = createHmac('sha256', 'whsec_a').update(`${now}.${body}`).digest('hex');
    for (const header of [
      '',
      'garbage',
      `v1=${v1}`,
      `t=${now}`,
      `t=${now},t=${now},v1=${v1}`,
      `t=abc,v1=${v1}`,
      `t=-5,v1=${v1}`,
      `t=${now},v1=${v1.toUpperCase()}`,
      `t=${now},v1=${v1.slice(2)}`,
      `t=${now},=x,v1=${v1}`,
      'x'.repeat(5000),
    ]) {
      failsWith('malformed_header', () => verifyWebhookSignature(body, header, 'whsec_a', { now }));
    }
    // An unknown scheme beside v1 is ignored, so a future scheme can be added.
    verifyWebhookSignature(body, `t=${now},v0=zz,v1=${v1}`, 'whsec_a', { now });
  });

  test('property: any body signed with any set of secrets verifies under each, and not after a change', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 2000 }),
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 60 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 4_000_000_000 }),
        fc.string({ minLength: 1, maxLength: 5 }),
        (payload, secrets, timestamp, extra) => {
          const header = signWebhook(payload, secrets, timestamp);
          for (const secret of secrets) verifyWebhookSignature(payload, header, secret, { now: timestamp });
          failsWith('no_matching_signature', () =>
            verifyWebhookSignature(payload + extra, header, secrets[0] as string, { now: timestamp }),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('webhook URLs', () => {
  const refused = (url: string, production: boolean) =>
    assert.throws(
      () => assertWebhookUrl(url, production),
      (error: unknown) => (error as { code: string; field: string }).code === 'webhook_url_invalid',
      url,
    );

  test('development: https anywhere, http only to loopback', () => {
    for (const url of [
      'https://shop.example/hooks',
      'http://127.0.0.1:8080/h',
      'http://[::1]:9/h',
      'http://localhost/h',
    ])
      assertWebhookUrl(url, false);
    for (const url of [
      'http://shop.example/hooks',
      'ftp://127.0.0.1/h',
      'not a url',
      'https://u:p@shop.example/h',
    ])
      refused(url, false);
    refused('https://shop.example/h#frag', false);
  });

  test('production: https only, never to loopback or private address literals', () => {
    assertWebhookUrl('https://shop.example/hooks', true);
    assertWebhookUrl('https://93.184.215.14/hooks', true);
    for (const url of [
      'http://127.0.0.1/h',
      'https://127.0.0.1/h',
      'https://localhost/h',
      'https://10.1.2.3/h',
      'https://172.20.0.1/h',
      'https://192.168.1.1/h',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/h',
      'https://[fd00::1]/h',
      'http://shop.example/h',
      // Special-purpose ranges and the IPv6 forms that carry an IPv4 address inside.
      'https://0.0.0.1/h',
      'https://198.18.0.1/h',
      'https://192.0.0.8/h',
      'https://224.0.0.1/h',
      'https://[::ffff:127.0.0.1]/h',
      'https://[::127.0.0.1]/h',
      'https://[::ffff:0:127.0.0.1]/h',
      'https://[::ffff:0:a9fe:a9fe]/h',
      'https://[64:ff9b::a9fe:a9fe]/h',
      'https://[2002:7f00:1::]/h',
      'https://[fec0::1]/h',
      'https://localhost./h',
      'https://api.LOCALHOST/h',
    ])
      refused(url, true);
    // Public addresses in the IPv4-mapped form are still public.
    assertWebhookUrl('https://[::ffff:93.184.215.14]/hooks', true);
  });

  test('production: every address a name resolves to is checked when connecting', async () => {
    const lookup = (host: string) =>
      new Promise<unknown>((resolve) =>
        publicOnlyLookup(host, { all: true }, (error, addresses) => resolve(error ? error : addresses)),
      );
    // localhost resolves to loopback: refused at connect time, whatever the URL said.
    const refusedLookup = (await lookup('localhost')) as { code?: string };
    assert.equal(refusedLookup.code, 'WEBHOOK_ADDRESS_REFUSED');
    assert.equal(isInternalAddress('169.254.169.254'), true);
    assert.equal(isInternalAddress('93.184.215.14'), false);
    assert.equal(isInternalAddress('2606:2800:21f:cb07:6820:80da:af6b:8b2c'), false);
  });
});
