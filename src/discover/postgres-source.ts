import postgres from 'postgres';
import type { DiscoverySink } from './finding.ts';
import { readError, redactDigitRuns } from './masking.ts';
import { scanValue } from './text-scan.ts';

/** Column types that can hold a card number as text or bytes (numbers included: PANs fit in numeric). */
const scannedTypes = [
  'text',
  'character varying',
  'character',
  'json',
  'jsonb',
  'bytea',
  'xml',
  'bigint',
  'numeric',
  'ARRAY',
  'USER-DEFINED',
];

export interface PostgresScanOptions {
  url: string;
  /** Rows per table: a random sample of about this many rows instead of every row. */
  sample: number | undefined;
}

/** The URL without its password, for reports. */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return `${u.host}${u.pathname}`;
  } catch {
    return 'postgres';
  }
}

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

/**
 * Scans every text, JSON, XML, bytea and numeric column of every table outside the system schemas,
 * streaming rows through a cursor. Findings name schema.table, column and the row's primary key (or its
 * ctid when the table has none), each masked.
 */
export async function scanPostgres(options: PostgresScanOptions, sink: DiscoverySink): Promise<void> {
  const database = describePostgresUrl(options.url);
  const sql = postgres(options.url, {
    max: 1,
    onnotice: () => {},
    connect_timeout: 10,
    connection: { application_name: 'cardhold-discover' },
  });
  try {
    const columns = await sql<
      { schema: string; table: string; column: string; type: string; udt: string }[]
    >`select c.table_schema as schema, c.table_name as table, c.column_name as column,
        c.data_type as type, c.udt_name as udt
      from information_schema.columns c
      join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where t.table_type = 'BASE TABLE'
        and c.table_schema not in ('pg_catalog', 'information_schema')
        and c.table_schema not like 'pg\\_toast%'
        and c.data_type in ${sql(scannedTypes)}
      order by c.table_schema, c.table_name, c.ordinal_position`;
    const tables = new Map<string, { schema: string; table: string; columns: string[] }>();
    for (const c of columns) {
      // Arrays and user-defined types only when they are text-like (text[], citext, …).
      if ((c.type === 'ARRAY' || c.type === 'USER-DEFINED') && !/text|char|json|citext/.test(c.udt)) continue;
      const key = `${c.schema}.${c.table}`;
      const entry = tables.get(key) ?? { schema: c.schema, table: c.table, columns: [] };
      entry.columns.push(c.column);
      tables.set(key, entry);
    }
    for (const { schema, table, columns: cols } of tables.values()) {
      const name = `${schema}.${table}`;
      try {
        await scanTable(sql, schema, table, cols, options.sample, database, sink);
      } catch (error) {
        sink.error({ source: `postgres ${database} ${redactDigitRuns(name)}`, message: readError(error) });
      }
    }
  } catch (error) {
    sink.error({ source: `postgres ${database}`, message: readError(error) });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function scanTable(
  sql: postgres.Sql,
  schema: string,
  table: string,
  columns: string[],
  sample: number | undefined,
  database: string,
  sink: DiscoverySink,
): Promise<void> {
  const qualified = `${quote(schema)}.${quote(table)}`;
  const keys = await sql<{ name: string }[]>`
    select a.attname as name from pg_index i
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
    where i.indrelid = ${qualified}::regclass and i.indisprimary
    order by array_position(i.indkey::int2[], a.attnum)`;
  const keyNames = keys.length > 0 ? keys.map((k) => k.name) : ['ctid'];
  const keyList = keyNames.map((k, i) => `${k === 'ctid' ? 'ctid' : quote(k)}::text as "k${i}"`).join(', ');
  // bytea stays bytes (UTF-16 stored in bytea is detected like a file); everything else is read as text.
  const types = await sql<{ name: string; bytea: boolean }[]>`
    select attname as name, atttypid = 'bytea'::regtype as bytea from pg_attribute
    where attrelid = ${qualified}::regclass and attnum > 0 and not attisdropped`;
  const isBytea = new Map(types.map((t) => [t.name, t.bytea]));
  const valueList = columns
    .map((c, i) => `${quote(c)}${isBytea.get(c) ? '' : '::text'} as "v${i}"`)
    .join(', ');
  let from = qualified;
  let limit = '';
  if (sample !== undefined) {
    const [estimate] = await sql<{ rows: number }[]>`
      select reltuples::float8 as rows from pg_class where oid = ${qualified}::regclass`;
    const rows = estimate?.rows ?? -1;
    if (rows > sample) from += ` tablesample bernoulli (${Math.min(100, (300 * sample) / rows)})`;
    limit = ` limit ${sample}`;
  }
  const tableName = redactDigitRuns(`${schema}.${table}`);
  await sql
    .unsafe(`select ${keyList}, ${valueList} from ${from}${limit}`)
    .cursor(500, (rows: readonly Record<string, unknown>[]) => {
      for (const row of rows) {
        const rowKey = redactDigitRuns(keyNames.map((k, i) => `${k}=${String(row[`k${i}`])}`).join(','));
        columns.forEach((column, i) => {
          const value = row[`v${i}`];
          if (value === null || value === undefined) return;
          const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
          scanValue(
            bytes,
            {
              source: 'postgres',
              database,
              table: tableName,
              db_column: redactDigitRuns(column),
              row_key: rowKey,
            },
            sink,
          );
        });
      }
    });
}
