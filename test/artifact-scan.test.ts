import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { scanArtifacts } from './artifact-scan.ts';
import { testCards, testCvvs } from './fixtures/cards.ts';

test('the artifact scan finds planted card data and passes clean files', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-scan-'));
  try {
    await mkdir(path.join(dir, 'logs'));
    await writeFile(
      path.join(dir, 'logs', 'clean.log'),
      '{"msg":"request completed","status":201,"time":"2026-11-22T07:30:43.602Z"}\n',
    );
    assert.equal((await scanArtifacts(dir)).findings.length, 0);
    await writeFile(
      path.join(dir, 'logs', 'leak.log'),
      `ok\n{"card":"${testCards.amex.replace(/(\d{4})/g, '$1 ')}"}\n{"cvv":"${testCvvs.three}"}\n`,
    );
    const { files, findings } = await scanArtifacts(dir);
    assert.equal(files, 2);
    assert.deepEqual(
      findings.map((f) => [path.basename(f.file), f.line, f.kind]),
      [
        ['leak.log', 2, 'test-pan'],
        ['leak.log', 2, 'luhn-valid-run'],
        ['leak.log', 3, 'cvv-value'],
      ],
    );
    assert.ok(
      findings.every((f) => !f.sample.includes(testCards.amex)),
      'findings are masked',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('binary artefacts (screenshots) are searched for test cards as bytes, without line noise', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-scan-'));
  try {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    // Digit runs that a line scan would take for Luhn-valid numbers, between NUL bytes: not findings.
    const noise = Buffer.from(`\u0000${'0'.repeat(16)}\u0000${'4'.repeat(13)}0\n`, 'latin1');
    await writeFile(path.join(dir, 'clean.png'), Buffer.concat([png, noise]));
    assert.deepEqual((await scanArtifacts(dir)).findings, []);
    await writeFile(
      path.join(dir, 'leak.png'),
      Buffer.concat([png, Buffer.from(testCards.visa, 'latin1'), Buffer.from([0])]),
    );
    await writeFile(
      path.join(dir, 'leak16.bin'),
      Buffer.concat([Buffer.from([0, 1]), Buffer.from(testCards.amex, 'utf16le')]),
    );
    const { findings } = await scanArtifacts(dir);
    assert.deepEqual(findings.map((f) => [path.basename(f.file), f.kind]).sort(), [
      ['leak.png', 'test-pan'],
      ['leak16.bin', 'test-pan'],
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('CVV values are found in every shape a leak takes, and only after a CVV-like key', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-scan-'));
  try {
    const cvv = testCvvs.three;
    const leaks = [
      `{"cvc":"${cvv}"}`,
      `{"cvv": ${cvv}}`,
      `{"body":"{\\"cvc\\":\\"${cvv}\\"}"}`,
      `{"body":"{\\\\\\"security_code\\\\\\":\\\\\\"${cvv}\\\\\\"}"}`,
      `number=4&cvc=${cvv}&exp=12`,
      `<card><cvc>${cvv}</cvc></card>`,
      `cardVerificationValue: ${testCvvs.four}`,
    ];
    const clean = [
      `{"amount":${cvv}0,"cvv_slot":"cvv_${cvv}"}`,
      `{"cvc":"${cvv}0"}`,
      `{"cvc":"[REDACTED]","order":"${cvv}"}`,
    ];
    await mkdir(path.join(dir, 'logs'));
    await writeFile(path.join(dir, 'logs', 'leaks.log'), `${leaks.join('\n')}\n`);
    await writeFile(path.join(dir, 'logs', 'clean.log'), `${clean.join('\n')}\n`);
    const { findings } = await scanArtifacts(dir);
    assert.deepEqual(
      findings.map((f) => [path.basename(f.file), f.line, f.kind]),
      leaks.map((_, i) => ['leaks.log', i + 1, 'cvv-value']),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('database dumps are searched for test cards and CVV values, not for digit runs in ciphertext', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cardhold-scan-'));
  try {
    await mkdir(path.join(dir, 'db-dumps'));
    // Hex ciphertext and hashes: long digit stretches, some Luhn-valid by chance.
    const noise = `COPY vault.tokens (id, ciphertext) FROM stdin;\ntok_1\t\\x${'4111111111111111'}00ab\n\\.\n`;
    await writeFile(
      path.join(dir, 'db-dumps', 'clean.sql'),
      noise.replace('4111111111111111', '4539148803436467'),
    );
    assert.deepEqual((await scanArtifacts(dir)).findings, []);
    await writeFile(
      path.join(dir, 'db-dumps', 'leak.sql'),
      `COPY payments.idempotency_keys (response_body) FROM stdin;\n{"cvc":"${testCvvs.three}"}\n{"card":"${testCards.visa}"}\n\\.\n`,
    );
    const { findings } = await scanArtifacts(dir);
    assert.deepEqual(
      findings.map((f) => [path.basename(f.file), f.line, f.kind]),
      [
        ['leak.sql', 2, 'cvv-value'],
        ['leak.sql', 3, 'test-pan'],
      ],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
