import type { Sql } from 'postgres';
import { Type } from 'typebox';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { accessEvent } from '../audit/events.ts';
import { adminAccess } from '../auth/authenticate.ts';
import type { AppInstance } from '../http/create-server.ts';
import { keyInventory } from './key-inventory.ts';
import type { KeyProvider } from './key-provider.ts';
import { type Cryptoperiods, keyStatus } from './key-status.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

const KeyStatusRow = Type.Object({
  merchant_id: Nullable(Type.String()),
  purpose: Type.String(),
  key: Type.String(),
  version: Type.Integer(),
  created_at: Type.String(),
  age_days: Type.Integer(),
  cryptoperiod_days: Type.Integer(),
  period_ends_at: Type.String(),
  status: Type.Union([Type.Literal('ok'), Type.Literal('warn'), Type.Literal('expired')]),
});

const InventoryRow = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('key'), Type.Literal('certificate')]),
  purpose: Type.String(),
  merchant_id: Nullable(Type.String()),
  version: Type.String(),
  algorithm: Type.String(),
  strength_bits: Type.Integer(),
  provider: Type.String(),
  environment: Type.String(),
  created_at: Nullable(Type.String()),
  expires_at: Nullable(Type.String()),
  state: Type.String(),
  subject: Type.Optional(Type.String()),
  san: Type.Optional(Type.String()),
});

/**
 * Read-only key status (cryptoperiods, PCI DSS 3.6.4) and the key and certificate inventory
 * (PCI DSS 3.6.1.1, 4.2.1.1) on the vault, which holds the key tables, for `keys:admin`: what
 * `cardhold keys status` and `keys inventory` print, as JSON for the operator dashboard. Each read is
 * recorded as `key.inventory`, like the commands'.
 */
export function registerKeyRoutes(
  app: AppInstance,
  deps: {
    sql: Sql;
    provider: KeyProvider;
    trail: AuditTrail;
    periods: Cryptoperiods;
    certificateDir: string | undefined;
  },
): void {
  const security = [{ bearer: [] }];
  app.get(
    '/v1/keys/status',
    {
      config: { access: 'keys:admin' },
      schema: {
        summary: 'Each active key against its cryptoperiod (ok, warn, expired)',
        tags: ['keys'],
        security,
        response: {
          200: Type.Object({
            object: Type.Literal('list'),
            data: Type.Array(KeyStatusRow),
            warn_days: Type.Integer(),
          }),
        },
      },
    },
    async (request) => {
      const data = await keyStatus(deps.sql, deps.periods);
      await deps.trail.record(
        accessEvent(adminAccess(request), 'key.inventory', { type: 'key_status', id: '*' }, null),
      );
      return { object: 'list' as const, data, warn_days: deps.periods.warnDays };
    },
  );
  app.get(
    '/v1/keys/inventory',
    {
      config: { access: 'keys:admin' },
      schema: {
        summary:
          'Every key and certificate of the vault: purpose, version, algorithm, strength, dates, state',
        description:
          "The api's operator session and TOTP keys are not readable by the vault's database role; `cardhold keys inventory` lists them too.",
        tags: ['keys'],
        security,
        response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(InventoryRow) }) },
      },
    },
    async (request) => {
      const data = await keyInventory({
        sql: deps.sql,
        provider: deps.provider,
        periods: deps.periods,
        certificateDir: deps.certificateDir,
        identityKeys: false,
      });
      await deps.trail.record(
        accessEvent(adminAccess(request), 'key.inventory', { type: 'key_inventory', id: '*' }, null),
      );
      return { object: 'list' as const, data };
    },
  );
}
