/**
 * The `proxycache` command as a user runs it: `--help` lists every variable with its default, a bad value stops
 * start-up with one line naming the variable, and flags start a proxy that drains and exits 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONFIG_VARIABLES } from '../../src/config/index.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle } from '../../src/sim/index.js';
import { cleanEnv, runCli, spawnCli } from '../support/child.js';

describe('proxycache CLI', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'proxycache-cli-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('--help exits 0 and lists every variable with its flag and default', async () => {
    const run = await runCli(['--help'], cleanEnv({}));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    for (const v of CONFIG_VARIABLES) {
      const line = run.stdout.split('\n').find((l) => l.includes(` ${v.env}, default: `));
      assert.ok(line, `${v.env} is listed`);
      assert.ok(line.includes(v.flag), `${v.env} shows ${v.flag}`);
      assert.ok(line.endsWith(`default: ${v.default === '' ? '(unset)' : v.default}`), line);
    }
  });

  it('an invalid value (LCP_TH=abc) stops start-up: exit code ≠ 0, one line naming the variable', async () => {
    const run = await runCli(
      [],
      cleanEnv({ LCP_TH: 'abc', META_DIR: join(root, 'meta-bad'), HOST: '127.0.0.1', PORT: '0' }),
    );
    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '', 'nothing started');
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /LCP_TH/);
    assert.match(lines[0]!, /"abc"/);
  });

  it('an invalid flag value names the flag too', async () => {
    const run = await runCli(['--n-slots', 'zero'], cleanEnv({ META_DIR: join(root, 'meta-bad') }));
    assert.notEqual(run.code, 0);
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /N_SLOTS="zero" \(from --n-slots\)/);
  });

  describe('serving', () => {
    let sim: SimHandle;
    before(async () => {
      sim = await startSimulator({ mode: 'llama-server', models: [{ id: 'tiny', nSlots: 2 }], cost: { timeScale: 0 } });
    });
    after(() => sim.close());

    it('--port 0 --llama-url …: serves /health, and exits 0 on SIGTERM', async () => {
      const proc = spawnCli(
        ['--port', '0', '--llama-url', sim.url, '--host', '127.0.0.1'],
        cleanEnv({ META_DIR: join(root, 'meta') }),
      );
      try {
        const listening = JSON.parse(
          await proc.line((l) => l.includes('"proxycache listening"'), 5000, 'the listening line'),
        ) as {
          address: string;
          backends: Array<{ url: string; kind: string }>;
        };
        assert.match(listening.address, /^http:\/\/127\.0\.0\.1:\d+$/);
        assert.notEqual(new URL(listening.address).port, '0');
        assert.deepEqual(listening.backends, [{ url: sim.url, kind: 'llama-server' }]);
        const health = await fetch(`${listening.address}/health`, { signal: AbortSignal.timeout(3000) });
        assert.equal(health.status, 200);
        assert.equal(((await health.json()) as { status: string }).status, 'ok');

        proc.child.kill('SIGTERM');
        const run = await proc.exit(5000);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /"shutting down"/);
      } finally {
        if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      }
    });
  });
});
