#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { type Config, defaultConfig, loadConfig } from './config/index.js';
import { Daemon, VERSION } from './daemon.js';
import { createLogger } from './log/logger.js';
import { daemonUsage, parseDaemonArgs } from './cli/daemon-args.js';

async function main(): Promise<void> {
  const args = parseDaemonArgs(process.argv.slice(2));
  if (args.kind === 'help' || args.kind === 'version') {
    process.stdout.write(args.kind === 'help' ? daemonUsage() : `${VERSION}\n`);
    process.exit(0);
  }
  if (args.kind === 'usage') {
    process.stderr.write(`virt-lvmlockd: ${args.message}\n${daemonUsage()}`);
    process.exit(2);
  }
  let config: Config;
  let usingDefaults = false;
  try {
    // The default path may be absent on a fresh install: the built-in defaults are complete.
    if (!args.explicit && !existsSync(args.configFile)) {
      config = defaultConfig();
      usingDefaults = true;
    } else {
      config = await loadConfig(args.configFile);
    }
  } catch (err) {
    process.stderr.write(`virt-lvmlockd: ${(err as Error).message}\n`);
    process.exit(2);
  }

  const logger = createLogger({ level: config.log.level });
  if (usingDefaults) logger.notice(`${args.configFile} does not exist; using the built-in defaults`);

  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    // Bounded: a stuck shutdown must not keep systemd waiting forever.
    setTimeout(() => process.exit(code), 15_000).unref();
    await daemon.stop().catch(() => undefined);
    await logger.close();
    process.exit(code);
  };
  const daemon = new Daemon(args.configFile, config, logger, (reason) => {
    logger.error(`fatal: ${reason}; exiting so that systemd restarts the daemon`);
    void exit(1);
  });

  process.on('SIGTERM', () => {
    logger.notice('SIGTERM: stopping (locks stay held for the running guests)');
    void exit(0);
  });
  process.on('SIGINT', () => {
    logger.notice('SIGINT: stopping (locks stay held for the running guests)');
    void exit(0);
  });
  process.on('SIGHUP', () => {
    logger.notice('SIGHUP: reloading the configuration');
    daemon.reload().catch(() => undefined);
  });
  process.on('unhandledRejection', (err) => {
    logger.error(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}`);
    void exit(1);
  });
  process.on('uncaughtException', (err) => {
    logger.error(`uncaught exception: ${err.stack ?? err.message}`);
    void exit(1);
  });

  try {
    await daemon.start();
  } catch (err) {
    logger.error(`startup failed: ${(err as Error).message}`);
    await exit(1);
  }
}

void main();
