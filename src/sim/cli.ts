#!/usr/bin/env node
/**
 * `npm run sim -- --help`: starts a simulator in the foreground, prints its URL, stops on SIGINT/SIGTERM.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { HELP, parseSimArgs } from './cli-args.js';
import { startSimulator } from './index.js';

async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseSimArgs(argv);
  } catch (err) {
    process.stderr.write(`sim: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (options.slotSavePath) {
    options.slotSavePath = resolve(options.slotSavePath);
    mkdirSync(options.slotSavePath, { recursive: true });
  }
  const sim = await startSimulator(options);
  const models = options.models.map((m) => m.id).join(', ');
  process.stdout.write(`proxycache sim: ${options.mode} (${models}) listening on ${sim.url}\n`);
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      sim.close().then(done, done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sim: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
