import { readFile, stat } from 'node:fs/promises';
import type { FastifyReply } from 'fastify';
import { type Static, Type } from 'typebox';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { accessEvent } from '../audit/events.ts';
import { adminAccess } from '../auth/authenticate.ts';
import type { AppInstance } from '../http/create-server.ts';
import { dashboardCsp } from './dashboard-csp.ts';
import { type DashboardOidc, dashboardPage } from './dashboard-page.ts';
import { type WebAsset, webAssets } from './web-assets.ts';

const Finding = Type.Object({
  rule_id: Type.String(),
  severity: Type.String(),
  title: Type.String(),
  message: Type.String(),
  file: Type.String(),
  line: Type.Integer(),
  waived: Type.Boolean(),
});

const ScanReport = Type.Object({
  configured: Type.Boolean(),
  /** false when the file is configured but missing or not a cardhold scan report. */
  available: Type.Boolean(),
  file_modified_at: Type.Union([Type.String(), Type.Null()]),
  generated_at: Type.Union([Type.String(), Type.Null()]),
  result: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Null()]),
  fail_on: Type.Union([Type.String(), Type.Null()]),
  summary: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  findings: Type.Array(Finding),
});

type ScanReportView = Static<typeof ScanReport>;

const empty = (configured: boolean): ScanReportView => ({
  configured,
  available: false,
  file_modified_at: null,
  generated_at: null,
  result: null,
  fail_on: null,
  summary: null,
  findings: [],
});

const str = (value: unknown, fallback = ''): string => (typeof value === 'string' ? value : fallback);

/** The JSON report of `cardhold scan --format json` (schema cardhold-scan-report/1), or nothing usable. */
async function readScanReport(file: string): Promise<ScanReportView> {
  let text: string;
  let modified: Date;
  try {
    [text, modified] = await Promise.all([readFile(file, 'utf8'), stat(file).then((s) => s.mtime)]);
  } catch {
    return empty(true);
  }
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return empty(true);
  }
  if (report === null || typeof report !== 'object' || report['schema'] !== 'cardhold-scan-report/1')
    return empty(true);
  const findings = Array.isArray(report['findings']) ? (report['findings'] as Record<string, unknown>[]) : [];
  const result = report['result'];
  return {
    configured: true,
    available: true,
    file_modified_at: modified.toISOString(),
    generated_at: str(report['generatedAt']) || null,
    result: result === 'pass' || result === 'fail' ? result : null,
    fail_on: str(report['failOn']) || null,
    summary:
      report['summary'] && typeof report['summary'] === 'object'
        ? (report['summary'] as Record<string, unknown>)
        : null,
    findings: findings.map((f) => ({
      rule_id: str(f['ruleId']),
      severity: str(f['severity']),
      title: str(f['title']),
      message: str(f['message']),
      file: str(f['file']),
      line: typeof f['line'] === 'number' && Number.isInteger(f['line']) ? f['line'] : 0,
      waived: f['waiver'] !== undefined,
    })),
  };
}

/**
 * The operator dashboard on the api role: its page, script and stylesheet (public: they hold no data;
 * every view's data comes from the JSON routes, with the operator's own session and permissions), and
 * the latest `cardhold scan` report for `audit:read` (compliance evidence, like the audit trail).
 */
export function registerDashboardRoutes(
  app: AppInstance,
  deps: {
    /** The vault's origin as browsers reach it; undefined hides the token and key views' data. */
    vaultOrigin: () => string | undefined;
    scanReportFile: string | undefined;
    trail: AuditTrail;
    /** Sign-in through the identity provider, when configured. */
    oidc?: DashboardOidc | undefined;
  },
): void {
  const publicRoute = (summary: string) => ({
    config: { access: 'public' as const },
    schema: { summary, tags: ['dashboard'] },
  });

  app.get(
    '/dashboard',
    publicRoute('The operator dashboard (HTML shell; no data)'),
    async (_request, reply) => {
      const vaultOrigin = deps.vaultOrigin();
      const csp = dashboardCsp(vaultOrigin, deps.oidc ? new URL(deps.oidc.tokenEndpoint).origin : undefined);
      return reply
        .header('content-security-policy', csp)
        .header('cross-origin-opener-policy', 'same-origin')
        .header('cross-origin-resource-policy', 'same-origin')
        .header('x-frame-options', 'DENY')
        .type('text/html; charset=utf-8')
        .send(dashboardPage(await webAssets(), vaultOrigin, deps.oidc));
    },
  );

  const serve =
    (pick: (assets: Awaited<ReturnType<typeof webAssets>>) => WebAsset) =>
    async (_request: unknown, reply: FastifyReply) => {
      const asset = pick(await webAssets());
      return reply
        .header('cross-origin-resource-policy', 'same-origin')
        .type(asset.contentType)
        .send(asset.body);
    };
  app.get(
    '/dashboard/app.js',
    publicRoute('The dashboard’s script'),
    serve((a) => a.dashboard),
  );
  app.get(
    '/dashboard/app.css',
    publicRoute('The dashboard’s stylesheet'),
    serve((a) => a.dashboardStyle),
  );

  app.get(
    '/v1/admin/scan-report',
    {
      config: { access: 'audit:read' },
      schema: {
        summary: 'The latest `cardhold scan` report (CARDHOLD_SCAN_REPORT_FILE)',
        description:
          'Summary and findings of the JSON report the scanner wrote; `configured: false` when no file is set, `available: false` when it is missing or not a scan report.',
        tags: ['dashboard'],
        security: [{ bearer: [] }],
        response: { 200: ScanReport },
      },
    },
    async (request) => {
      const file = deps.scanReportFile;
      await deps.trail.record(
        accessEvent(adminAccess(request), 'scan_report.read', { type: 'scan_report', id: 'latest' }, null),
      );
      return file ? readScanReport(file) : empty(false);
    },
  );
}
