import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { testCards } from '../../test/fixtures/cards.ts';
import { randomPan } from '../../test/fixtures/discover-corpus.ts';
import { discover, discoverOptions } from './discover.ts';
import type { Finding } from './finding.ts';
import { maskDigits } from './masking.ts';
import { createReporter } from './reporters.ts';

const pgBase = process.env['CARDHOLD_TEST_POSTGRES_URL'];
const redisUrl = process.env['CARDHOLD_TEST_REDIS_URL'];
const skip = (!pgBase || !redisUrl) && 'needs the external PostgreSQL and Redis';

const name = `cardhold_discover_${randomBytes(4).toString('hex')}`;
let dbUrl = '';
const prefix = `cardhold-discover-test:${randomBytes(4).toString('hex')}:`;
const pans = {
  text: randomPan(),
  json: randomPan(),
  bytea: randomPan(),
  key: randomPan(),
  other: randomPan(),
};
const redisPans = {
  string: randomPan(),
  hash: randomPan(),
  list: randomPan(),
  set: randomPan(),
  zset: randomPan(),
  key: randomPan(),
};

async function run(options: { postgres?: string; redis?: string; redisMatch?: string; sample?: number }) {
  const findings: Finding[] = [];
  let json = '';
  const reporter = createReporter('json', (text) => {
    json += text;
  });
  const result = await discover(
    discoverOptions({
      postgres: options.postgres,
      redis: options.redis,
      redisMatch: options.redisMatch ?? '*',
      sample: options.sample,
    }),
    {
      finding: (f, allowed) => {
        findings.push(f);
        reporter.finding(f, allowed);
      },
      end: (...args) => reporter.end(...args),
    },
  );
  return { findings, json, ...result };
}

before(async () => {
  if (skip) return;
  const root = postgres(pgBase as string, { max: 1, onnotice: () => {} });
  await root.unsafe(`create database ${name}`);
  await root.end();
  const url = new URL(pgBase as string);
  url.pathname = `/${name}`;
  dbUrl = url.toString();
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  await sql.unsafe(`
    create schema shop;
    create table shop.orders (id bigint primary key, note text, payload jsonb, raw bytea, amount int);
    create table public.keyed_by_pan (pan text primary key, comment varchar(200));
    create table public.no_key (line text);
    create table public.big (id int primary key, v text);`);
  await sql`insert into shop.orders values
    (1, ${`customer paid with card ${pans.text}`}, ${sql.json({ card: { number: pans.json } })}, ${Buffer.from(`\ufeffpan ${pans.bytea}`, 'utf16le')}, 100),
    (2, 'order 2024-01-15 ref ORD-2024-000123456789', '{"phone":"+44 20 7946 0958"}', ${Buffer.from('nothing')}, 5)`;
  await sql`insert into public.keyed_by_pan values (${pans.key}, 'the key itself is a card number')`;
  await sql`insert into public.no_key values (${`test card ${testCards.visa}`})`;
  await sql`insert into public.big select g, case when g = 777 then ${`cc ${pans.other}`} else 'row ' || g end from generate_series(1, 2000) g`;
  await sql`analyze`;
  await sql.end();
  const redis = new Redis(redisUrl as string);
  await redis.set(`${prefix}session`, JSON.stringify({ card: redisPans.string }));
  await redis.hset(`${prefix}hash`, { name: 'x', pan: redisPans.hash });
  await redis.rpush(`${prefix}list`, 'a', `card ${redisPans.list}`);
  await redis.sadd(`${prefix}set`, `c ${redisPans.set}`);
  await redis.zadd(`${prefix}zset`, 1, `c ${redisPans.zset}`);
  await redis.set(`${prefix}card:${redisPans.key}`, 'the key name holds it');
  await redis.set(`${prefix}clean`, 'order ORD-2024-000123456789 at 1700000000123');
  redis.disconnect();
});

after(async () => {
  if (skip) return;
  const root = postgres(pgBase as string, { max: 1, onnotice: () => {} });
  await root.unsafe(`drop database if exists ${name} with (force)`);
  await root.end();
  const redis = new Redis(redisUrl as string);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

test('PostgreSQL: text, JSON and bytea columns of every table, with table, column and masked row key', {
  skip,
}, async () => {
  const { findings, json, exitCode } = await run({ postgres: dbUrl });
  const got = findings
    .map((f) =>
      f.source === 'postgres' ? `${f.table}.${f.db_column} [${f.row_key}] ${f.masked} ${f.test_card}` : '',
    )
    .sort();
  assert.deepEqual(got, [
    `public.big.v [id=777] ${maskDigits(pans.other)} false`,
    `public.keyed_by_pan.pan [pan=${maskDigits(pans.key)}] ${maskDigits(pans.key)} false`,
    `public.no_key.line [ctid=(0,1)] ${maskDigits(testCards.visa)} true`,
    `shop.orders.note [id=1] ${maskDigits(pans.text)} false`,
    `shop.orders.payload [id=1] ${maskDigits(pans.json)} false`,
    `shop.orders.raw [id=1] ${maskDigits(pans.bytea)} false`,
  ]);
  assert.equal(findings.find((f) => f.source === 'postgres' && f.db_column === 'raw')?.encoding, 'utf-16le');
  assert.equal(exitCode, 1);
  for (const pan of [...Object.values(pans), testCards.visa]) assert.ok(!json.includes(pan));
  assert.ok(!json.includes('postgres@'), 'no credentials in the report');
});

test('PostgreSQL --sample reads at most N rows per table', { skip }, async () => {
  const { findings, summary } = await run({ postgres: dbUrl, sample: 1 });
  assert.equal(summary.errors, 0);
  // One row of each table: the single-row tables are always in, the 2000-row one only by chance.
  assert.ok(findings.filter((f) => f.source === 'postgres' && f.table === 'shop.orders').length <= 3);
  assert.ok(findings.some((f) => f.source === 'postgres' && f.table === 'public.keyed_by_pan'));
});

test('Redis: key names and values of every type, masked', { skip }, async () => {
  const { findings, json, exitCode } = await run({ redis: redisUrl as string, redisMatch: `${prefix}*` });
  const got = findings
    .map((f) => (f.source === 'redis' ? `${f.key.slice(prefix.length)} ${f.field} ${f.masked}` : ''))
    .sort();
  assert.deepEqual(got, [
    `card:${maskDigits(redisPans.key)} (key name) ${maskDigits(redisPans.key)}`,
    `hash pan ${maskDigits(redisPans.hash)}`,
    `list [1] ${maskDigits(redisPans.list)}`,
    `session null ${maskDigits(redisPans.string)}`,
    `set (member) ${maskDigits(redisPans.set)}`,
    `zset (member) ${maskDigits(redisPans.zset)}`,
  ]);
  assert.equal(exitCode, 1);
  for (const pan of Object.values(redisPans)) assert.ok(!json.includes(pan));
});
