import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { open, seal } from '../src/keys/aes-gcm.ts';

/**
 * A local stand-in for the AWS KMS JSON API (TrentService Encrypt, Decrypt, DescribeKey, chosen by the
 * X-Amz-Target header), so the real SDK can be tested without AWS. It does not check signatures. Its
 * ciphertext is the key id and an AES-256-GCM box whose AAD is the sorted encryption context, so a wrong
 * context or another key fails as KMS fails: InvalidCiphertextException.
 */
export async function startKmsStandIn(keyId = 'arn:aws:kms:eu-west-1:000000000000:key/test'): Promise<{
  endpoint: string;
  keyId: string;
  calls: string[];
  close(): Promise<void>;
}> {
  const key = randomBytes(32);
  const calls: string[] = [];
  const aad = (context: Record<string, string> = {}) =>
    Buffer.from(JSON.stringify(Object.entries(context).sort(([a], [b]) => a.localeCompare(b))));
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      calls.push(target);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, string> & {
        EncryptionContext?: Record<string, string>;
      };
      const reply = (status: number, value: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        response.end(JSON.stringify(value));
      };
      const fail = (type: string) => reply(400, { __type: type, message: type });
      if (body['KeyId'] !== undefined && body['KeyId'] !== keyId) return fail('NotFoundException');
      if (target === 'TrentService.Encrypt') {
        const boxed = seal(key, Buffer.from(body['Plaintext'] ?? '', 'base64'), aad(body.EncryptionContext));
        const blob = Buffer.concat([Buffer.from(`${keyId}\n`), boxed]);
        return reply(200, {
          CiphertextBlob: blob.toString('base64'),
          KeyId: keyId,
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        });
      }
      if (target === 'TrentService.Decrypt') {
        const blob = Buffer.from(body['CiphertextBlob'] ?? '', 'base64');
        const cut = blob.indexOf(10);
        if (cut < 0 || blob.subarray(0, cut).toString() !== keyId) return fail('InvalidCiphertextException');
        try {
          const plain = open(key, blob.subarray(cut + 1), aad(body.EncryptionContext));
          return reply(200, {
            Plaintext: plain.toString('base64'),
            KeyId: keyId,
            EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          });
        } catch {
          return fail('InvalidCiphertextException');
        }
      }
      if (target === 'TrentService.DescribeKey') {
        return reply(200, { KeyMetadata: { KeyId: keyId, Arn: keyId, Enabled: true, KeyState: 'Enabled' } });
      }
      return fail('UnknownOperationException');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    keyId,
    calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
