/**
 * docs/proxycache.service: `systemd-analyze verify` accepts it without a warning (when systemd-analyze is installed),
 * and systemd waits longer than the proxy's own shutdown before it kills.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// dist/test/unit/systemd-unit.test.js → the repository root.
const UNIT = new URL('../../../docs/proxycache.service', import.meta.url);
/** cli.ts exits this long after SHUTDOWN_TIMEOUT_SECONDS if close() has not finished (EXIT_MARGIN_MS). */
const EXIT_MARGIN_S = 5;

function setting(text: string, name: string): string | undefined {
  return new RegExp(`^${name}=(.*)$`, 'm').exec(text)?.[1]?.trim();
}

function run(cmd: string, args: string[]): Promise<{ code: number | 'missing'; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') resolve({ code: 'missing', stderr, stdout });
      else resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr, stdout });
    });
  });
}

it('TimeoutStopSec leaves room for SHUTDOWN_TIMEOUT_SECONDS and the exit margin', async () => {
  const text = await readFile(UNIT, 'utf8');
  const stop = Number(setting(text, 'TimeoutStopSec'));
  const shutdown = Number(/^Environment=SHUTDOWN_TIMEOUT_SECONDS=(\d+)$/m.exec(text)?.[1]);
  assert.ok(Number.isFinite(shutdown) && shutdown > 0, 'the unit sets SHUTDOWN_TIMEOUT_SECONDS');
  assert.ok(stop > shutdown + EXIT_MARGIN_S, `TimeoutStopSec=${stop} must exceed ${shutdown} + ${EXIT_MARGIN_S}`);
  assert.equal(setting(text, 'KillSignal'), 'SIGTERM');
  assert.match(setting(text, 'ExecStart') ?? '', /dist\/src\/cli\.js$/);
});

it('systemd-analyze verify accepts the unit without a warning', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'proxycache-unit-'));
  try {
    // The node binary of this machine, wherever it is (verify checks that ExecStart is executable).
    const text = (await readFile(UNIT, 'utf8')).replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`);
    const unit = join(root, 'proxycache.service');
    await writeFile(unit, text);
    const result = await run('systemd-analyze', ['verify', unit]);
    if (result.code === 'missing') {
      t.skip('systemd-analyze is not installed: the unit file was not verified');
      return;
    }
    const ours = result.stderr.split('\n').filter((l) => l.includes('proxycache.service'));
    assert.deepEqual(ours, [], result.stderr);
    assert.equal(result.code, 0, result.stderr);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
