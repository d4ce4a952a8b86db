/**
 * `npm run test:real`: the scenarios that matter, against a real llama-server. Finds the binary and model
 * (LLAMA_SERVER_BIN / LLAMA_MODEL, else ../shared/llama-server/ beside the repository); without them it prints one
 * line saying why and how to enable the suite, and succeeds (a LLAMA_SERVER_BIN or LLAMA_MODEL that names a missing
 * file is an error instead). Otherwise it runs every *.test.js beside this file,
 * one file at a time (each starts its own servers on free loopback ports).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENABLE_HINT, locateLlamaServer } from '../test/support/real-server.js';

const where = locateLlamaServer();
if ('skip' in where && where.explicit) {
  console.error(`test:real: ${where.skip}`);
  process.exit(2);
}
if ('skip' in where) {
  console.log(`test:real skipped: ${where.skip}; to run it, ${ENABLE_HINT}`);
  process.exit(0);
}
const here = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(here)
  .filter((f) => f.endsWith('.test.js'))
  .sort()
  .map((f) => join(here, f));
console.log(`test:real: ${where.bin} with ${where.model}`);
const child = spawn(
  process.execPath,
  ['--test', '--test-concurrency=1', '--test-timeout=120000', ...process.argv.slice(2), ...files],
  {
    stdio: 'inherit',
    env: { ...process.env, LLAMA_SERVER_BIN: where.bin, LLAMA_MODEL: where.model },
  },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
