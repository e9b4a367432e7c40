import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capturedLogger } from '../../test/captured-logger.ts';
import { acquirerTestCards } from '../../test/fixtures/cards.ts';
import { RoleMetrics } from '../http/metrics.ts';
import { CspViolationSink, LOG_BUDGET, MAX_REPORTS_PER_REQUEST, parseCspReports } from './csp-reports.ts';

const pan = acquirerTestCards.approve;

test('both report formats are read, down to a directive from a closed list and an origin or keyword', () => {
  const legacy = parseCspReports({
    'csp-report': {
      'document-uri': `https://vault.example/hosted/card-fields?key=pk_test_x&n=${pan}`,
      'violated-directive': "img-src 'self'",
      'effective-directive': 'img-src',
      'blocked-uri': `https://collector.example/c.gif?n=${pan}`,
      'script-sample': `var n = '${pan}'`,
      disposition: 'enforce',
    },
  });
  assert.deepEqual(legacy, [
    { directive: 'img-src', blocked: 'https://collector.example', disposition: 'enforce' },
  ]);

  const batch = parseCspReports([
    {
      type: 'csp-violation',
      url: `https://vault.example/hosted/card-fields?n=${pan}`,
      body: {
        effectiveDirective: 'script-src-elem',
        blockedURL: 'inline',
        disposition: 'enforce',
        sample: pan,
      },
    },
    { type: 'deprecation', body: { id: 'x' } },
    {
      type: 'csp-violation',
      body: { effectiveDirective: 'connect-src', blockedURL: 'wss://evil.example:444/x' },
    },
    {
      type: 'csp-violation',
      body: { effectiveDirective: 'Img-Src', blockedURL: `data:image/png;base64,${pan}` },
    },
    {
      type: 'csp-violation',
      body: { effectiveDirective: 'img-src', blockedURL: 'https://MZXW6YTBOI.x.skim.example/p' },
    },
    {
      type: 'csp-violation',
      body: { effectiveDirective: 'connect-src', blockedURL: 'https://10.1.2.3:8080/p' },
    },
    {
      type: 'csp-violation',
      body: { effectiveDirective: 'connect-src', blockedURL: 'https://[2001:db8:1:2:4111:1111:1111:1111]/' },
    },
    {
      type: 'csp-violation',
      body: { effectiveDirective: 'made-up', blockedURL: 'not a url', disposition: 'report' },
    },
    { type: 'csp-violation', body: { effectiveDirective: 42, blockedURL: { nested: pan } } },
  ]);
  assert.deepEqual(batch, [
    { directive: 'script-src-elem', blocked: 'inline', disposition: 'enforce' },
    { directive: 'connect-src', blocked: 'wss://evil.example:444', disposition: 'enforce' },
    { directive: 'img-src', blocked: 'data:', disposition: 'enforce' },
    // Labels before the site could carry encoded data: only the site is kept.
    { directive: 'img-src', blocked: 'https://*.skim.example', disposition: 'enforce' },
    { directive: 'connect-src', blocked: 'https://10.1.2.x:8080', disposition: 'enforce' },
    { directive: 'connect-src', blocked: 'https://[ipv6]', disposition: 'enforce' },
    { directive: 'other', blocked: 'other', disposition: 'report' },
    { directive: 'other', blocked: 'other', disposition: 'enforce' },
  ]);
  assert.ok(
    !JSON.stringify([legacy, batch]).includes(pan.slice(6, 12)),
    'nothing of the card number is kept',
  );

  // Not reports: refused as a whole.
  for (const body of [
    null,
    'text',
    42,
    {},
    { 'csp-report': 'x' },
    [1],
    [{ type: 'csp-violation', body: 'x' }],
  ]) {
    assert.equal(parseCspReports(body), undefined, JSON.stringify(body));
  }
  // A batch is read up to its limit.
  const many = Array.from({ length: MAX_REPORTS_PER_REQUEST + 10 }, () => ({
    type: 'csp-violation',
    body: { effectiveDirective: 'img-src', blockedURL: 'https://a.example/' },
  }));
  assert.equal(parseCspReports(many)?.length, MAX_REPORTS_PER_REQUEST);
});

test('every violation counts in the metric; each kind is logged at most once a minute, with what was held back', async () => {
  const { logger, lines } = capturedLogger('debug');
  const metrics = new RoleMetrics('vault', logger);
  let now = 1_000_000;
  const sink = new CspViolationSink(logger, metrics, () => now);
  const img = { directive: 'img-src', blocked: 'https://collector.example', disposition: 'enforce' } as const;
  const script = { directive: 'script-src-elem', blocked: 'inline', disposition: 'enforce' } as const;
  const count = async (directive: string) =>
    Number(
      new RegExp(
        `^cardhold_csp_violations_total\\{directive="${directive}",role="vault"\\} (\\d+)`,
        'm',
      ).exec(await metrics.metrics())?.[1],
    );
  assert.equal(await count('img-src'), 0, 'every directive starts at 0, so an alert sees the first');

  sink.record([img, img, script]);
  now += 30_000;
  sink.record([img]);
  const warnings = () => lines.filter((l) => l.includes('content security policy violation'));
  assert.equal(warnings().length, 2, 'one line per kind within the minute');
  now += 31_000;
  sink.record([img]);
  assert.equal(warnings().length, 3);
  const last = JSON.parse(warnings()[2] as string) as { level: string; csp: Record<string, unknown> };
  assert.equal(last.level, 'warn');
  assert.deepEqual(last.csp, { ...img, suppressed: 2 });
  assert.equal(await count('img-src'), 4);
  assert.equal(await count('script-src-elem'), 1);
});

test('made-up kinds cannot flood the logs: twenty lines a minute in all, then one line with the count', () => {
  const { logger, lines } = capturedLogger('debug');
  let now = 5_000_000;
  const sink = new CspViolationSink(logger, undefined, () => now);
  const kinds = Array.from({ length: LOG_BUDGET + 10 }, (_, i) => ({
    directive: 'img-src' as const,
    blocked: `https://site${i}.example`,
    disposition: 'enforce' as const,
  }));
  sink.record(kinds);
  const written = () => lines.map((l) => JSON.parse(l) as { csp: Record<string, unknown> });
  assert.equal(written().length, LOG_BUDGET);
  now += 60_000;
  sink.record(kinds.slice(0, 1));
  assert.deepEqual(written()[LOG_BUDGET]?.csp, { unlogged: 10 }, 'the rest of the minute, counted');
  assert.equal(written().length, LOG_BUDGET + 2, 'and the new minute logs again');
});
