#!/usr/bin/env node
/** The `proxycache` command: configuration from flags and environment, then listen until SIGINT/SIGTERM. */
import { loadConfig, ConfigError, HelpRequested, helpText } from './config/index.js';
import type { Config } from './config/index.js';
import { createLogger } from './log.js';
import { createProxy } from './proxy.js';
import { packageVersion } from './version.js';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(err.kind === 'version' ? `${packageVersion()}\n` : helpText());
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`proxycache: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, undefined, config.logFormat);
  const proxy = await createProxy(config, log);
  await proxy.listen();

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // close() ends by SHUTDOWN_TIMEOUT_SECONDS; this only guards against something unforeseen keeping it open.
    setTimeout(
      () => {
        log.error({ timeout_s: config.shutdownTimeoutSeconds }, 'shutdown did not finish after its deadline; exiting');
        process.exit(1);
      },
      config.shutdownTimeoutSeconds * 1000 + EXIT_MARGIN_MS,
    ).unref();
    proxy.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** How long after the shutdown deadline the process exits even if close() has not finished. */
const EXIT_MARGIN_MS = 5000;

main().catch((err: unknown) => {
  process.stderr.write(`proxycache: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
