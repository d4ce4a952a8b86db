/**
 * Shutdown has a deadline (SHUTDOWN_TIMEOUT_SECONDS): a backend that hangs on its saves neither holds up the saves
 * of the other backends (they run side by side) nor keeps the proxy from closing; what could not be saved is
 * logged, and the `proxycache` process exits.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle } from '../../src/sim/index.js';
import { chat, exists, keyOf, metaPath, MODEL, opening } from '../support/cache.js';
import { cleanEnv, spawnCli } from '../support/child.js';
import { withDeadline } from '../support/deadline.js';
import { eventsOf } from '../support/sim-helpers.js';
import { startStack, TEST_PROXY_ENV } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { startTap } from '../support/tap.js';
import type { Tap } from '../support/tap.js';

/** Far longer than any test waits: only the shutdown deadline can end a save the tap holds. */
const HUNG_REQUEST_TIMEOUT = '60';
const SHUTDOWN_S = 1.5;

describe('shutdown deadline', { timeout: 60_000 }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  it('a backend hanging on its save does not hold up the other backend, and close() ends at the deadline', async () => {
    const stack: Stack = await startStack({ sim: { models: [{ id: MODEL, nSlots: 1 }] } });
    cleanups.push(() => stack.close());
    const dir2 = await mkdtemp(join(tmpdir(), 'proxycache-test-b2-'));
    cleanups.push(() => rm(dir2, { recursive: true, force: true }));
    const sim2: SimHandle = await startSimulator({
      mode: 'llama-server',
      models: [{ id: MODEL, nSlots: 1 }],
      slotSavePath: dir2,
      cacheRamMiB: 0,
      cost: { timeScale: 0, kvBytesPerToken: 1000 },
    });
    cleanups.push(() => sim2.close());
    const frozen: Tap = await startTap(stack.sim.url);
    cleanups.push(() => frozen.close());
    await stack.restartProxy({
      BACKENDS: JSON.stringify([frozen.url, sim2.url].map((url) => ({ url, n_slots: 1, type: 'llama-server' }))),
      SAVE_POLICY: 'smart',
      REQUEST_TIMEOUT: HUNG_REQUEST_TIMEOUT,
      SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_S),
    });
    const a = opening(801);
    const b = opening(802);
    const lineA = (await chat(stack, a)).line; // backend 0 (the frozen one), unsaved
    const lineB = (await chat(stack, b)).line; // backend 1, unsaved
    assert.deepEqual([lineA.backend, lineB.backend], [frozen.url, sim2.url]);
    const hung = frozen.hold((r) => r.path.includes('action=save'));

    const started = performance.now();
    await withDeadline(stack.proxy.close(), SHUTDOWN_S * 1000 + 2000, 'the proxy to close');
    const took = performance.now() - started;

    assert.ok(took >= SHUTDOWN_S * 1000 - 50 && took < SHUTDOWN_S * 1000 + 1000, `close() took ${Math.round(took)} ms`);
    await withDeadline(hung.arrived, 100, 'the save the frozen backend holds');
    const saved = eventsOf(sim2, 'save');
    assert.equal(saved.length, 1, 'the healthy backend saved its slot meanwhile');
    assert.equal(saved[0]!.filename, keyOf(b));
    assert.equal(await exists(metaPath(stack.metaDir, keyOf(b))), true);
    const deadline = stack.logs.withMsg('shutdown deadline reached; aborting what is still running');
    assert.equal(deadline.length, 1);
    assert.deepEqual(deadline[0]!.not_saved, [
      { backend: frozen.url, model: MODEL, slot: 0, key: keyOf(a).slice(0, 16) },
    ]);
  });

  it('the proxycache process exits within the deadline on SIGTERM while its backend hangs on every save', async () => {
    const root = await mkdtemp(join(tmpdir(), 'proxycache-shutdown-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const sim = await startSimulator({
      mode: 'llama-server',
      models: [{ id: MODEL, nSlots: 2 }],
      slotSavePath: join(root, 'kv'),
      cacheRamMiB: 0,
      cost: { timeScale: 0, kvBytesPerToken: 1000 },
    });
    cleanups.push(() => sim.close());
    const frozen = await startTap(sim.url);
    cleanups.push(() => frozen.close());
    const proc = spawnCli(
      [],
      cleanEnv({
        ...TEST_PROXY_ENV,
        LOG_LEVEL: 'info',
        LLAMA_URL: frozen.url,
        BACKEND_TYPE: 'llama-server',
        N_SLOTS: '2',
        META_DIR: join(root, 'meta'),
        SAVE_POLICY: 'smart',
        REQUEST_TIMEOUT: HUNG_REQUEST_TIMEOUT,
        SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_S),
      }),
    );
    cleanups.push(async () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    });
    const listening = JSON.parse(
      await proc.line((l) => l.includes('"proxycache listening"'), 5000, 'the listening line'),
    ) as { address: string };
    const openai = new OpenAI({ baseURL: `${listening.address}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 10_000 });
    for (const seed of [811, 812]) {
      await openai.chat.completions.create({ model: MODEL, messages: opening(seed), max_tokens: 4 });
    }
    // Both slots hold a conversation that only they have; the backend will take every save and never answer.
    frozen.hold((r) => r.path.includes('action=save'));
    frozen.hold((r) => r.path.includes('action=save'));
    await proc.line((l) => l.includes('"msg":"chat"') && l.includes('"slot":1'), 5000, 'the second chat line');

    const started = performance.now();
    proc.child.kill('SIGTERM');
    const run = await proc.exit(SHUTDOWN_S * 1000 + 3000);
    const took = performance.now() - started;

    assert.equal(run.code, 0, run.stderr);
    assert.ok(took < SHUTDOWN_S * 1000 + 2000, `exited after ${Math.round(took)} ms`);
    const line = run.stdout.split('\n').find((l) => l.includes('shutdown deadline reached'));
    assert.ok(line, run.stdout);
    const notSaved = (JSON.parse(line) as { not_saved: Array<{ slot: number }> }).not_saved;
    assert.deepEqual(notSaved.map((n) => n.slot).sort(), [0, 1]);
  });
});
