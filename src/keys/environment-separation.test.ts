import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Sql } from 'postgres';
import { isCardholdError } from '../shared/errors.ts';
import { KeyHierarchy } from './key-hierarchy.ts';
import type { KeyEnvironment, KeyProvider } from './key-provider.ts';

/** A provider that records whether it was ever asked to unwrap. */
function provider(environment: KeyEnvironment): KeyProvider & { unwraps: number } {
  return {
    name: 'test',
    environment,
    sealed: false,
    unwraps: 0,
    async wrap(key) {
      return Buffer.from(key);
    },
    async unwrap(key) {
      this.unwraps++;
      return Buffer.from(key);
    },
    async check() {},
    async close() {},
    masterVersion: '1',
    versionOf: () => '1',
    masterVersions: () => ['1'],
    rotateMaster: async () => '2',
    destroyMasterVersion: async () => false,
  };
}

/** Stands in for the one row the hierarchy reads: a key-encrypting key stored by `environment`. */
const rowOf = (environment: KeyEnvironment) =>
  (async () => [{ version: 1, wrapped_key: Buffer.alloc(32, 1), environment }]) as unknown as Sql;

for (const [vault, key] of [
  ['production', 'development'],
  ['development', 'production'],
] as const) {
  test(`a ${vault} vault refuses a ${key} key-encrypting key, without asking the provider`, async () => {
    const p = provider(vault);
    const keys = new KeyHierarchy(rowOf(key), p);
    await assert.rejects(keys.version('mer_1', 'pan', 1), (error: unknown) => {
      assert.ok(isCardholdError(error));
      assert.equal(error.code, 'key_environment_mismatch');
      assert.equal(error.status, 503);
      return true;
    });
    assert.equal(p.unwraps, 0);
  });
}

test('a key of the vault’s own environment is unwrapped', async () => {
  const p = provider('production');
  const keys = new KeyHierarchy(rowOf('production'), p);
  await keys.version('mer_1', 'pan', 1);
  assert.equal(p.unwraps, 1);
});
