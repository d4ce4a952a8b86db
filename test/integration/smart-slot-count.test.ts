/**
 * Slot-count discovery over HTTP: without N_SLOTS the proxy uses the server's `total_slots` (from /props) instead
 * of its default of 2; an explicit N_SLOTS is kept even when the server has more.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { createProxy } from '../../src/proxy.js';
import type { Proxy } from '../../src/proxy.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle } from '../../src/sim/index.js';
import { MODEL } from '../support/cache.js';
import { withDeadline } from '../support/deadline.js';
import { eventsOf } from '../support/sim-helpers.js';
import { LogCapture, startStack, TEST_PROXY_ENV } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import { words } from '../support/text.js';

/** Four different big conversations at once; resolves with the proxy's 'chat' lines once all four are logged. */
async function fourAtOnce(url: string, logs: LogCapture): Promise<Array<Record<string, unknown>>> {
  const mark = logs.lines.length;
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
  const answers = await withDeadline(
    Promise.all(
      [1, 2, 3, 4].map((i) =>
        client.chat.completions.create({
          model: MODEL,
          messages: [{ role: 'user', content: words(64, 6100 + i) }],
          max_tokens: 4,
        }),
      ),
    ),
    10_000,
    'four answers',
  );
  assert.equal(answers.length, 4);
  const lines = () => logs.lines.slice(mark).filter((l) => l.msg === 'chat');
  await logs.waitFor(() => lines().length >= 4, 5000, 'four chat log lines');
  return lines();
}

describe('slot count from the server', { timeout: 60_000 }, () => {
  let sim: SimHandle | undefined;
  let proxy: Proxy | undefined;
  let root: string | undefined;
  let stack: Stack | undefined;
  afterEach(async () => {
    await proxy?.close();
    await sim?.close();
    if (root) await rm(root, { recursive: true, force: true });
    if (stack) await closeStack(stack);
    sim = proxy = root = stack = undefined;
  });

  it('without N_SLOTS, a 4-slot server gets its 4 slots used (not the default 2)', async () => {
    root = await mkdtemp(join(tmpdir(), 'proxycache-test-'));
    sim = await startSimulator({
      mode: 'llama-server',
      models: [{ id: MODEL, nSlots: 4 }],
      slotSavePath: join(root, 'kv_cache'),
      cacheRamMiB: 0,
      cost: { timeScale: 0, kvBytesPerToken: 1000 },
    });
    // Built here because the test stack always sets N_SLOTS (and an empty value is an invalid number, not "unset").
    const env = {
      ...TEST_PROXY_ENV,
      SAVE_POLICY: 'smart',
      LLAMA_URL: sim.url,
      META_DIR: join(root, 'kv_meta'),
      CACHE_DIR: join(root, 'kv_cache'),
    };
    assert.equal('N_SLOTS' in env, false);
    const config = loadConfig([], env);
    assert.equal(config.backends[0]!.nSlotsConfigured, false);
    const logs = new LogCapture();
    proxy = await createProxy(config, createLogger(config.logLevel, logs));
    const url = await proxy.listen();
    const taken = logs.withMsg('slot count taken from the server');
    assert.equal(taken.length, 1);
    assert.equal(taken[0]!.total_slots, 4);

    const startup = sim.events.length; // the start-up idle-slot probe's two one-token chats
    const lines = await fourAtOnce(url, logs);

    assert.deepEqual(lines.map((l) => l.slot).sort(), [0, 1, 2, 3], 'the proxy pinned four different slots');
    assert.deepEqual(
      eventsOf(sim, 'chat', startup)
        .map((e) => e.slot)
        .sort(),
      [0, 1, 2, 3],
      'and the server used them',
    );
    assert.deepEqual(eventsOf(sim, 'save'), [], 'no slot had to be given away, so nothing was saved');
  });

  it('N_SLOTS=2 against a 4-slot server: the proxy keeps to 2 slots', async () => {
    stack = await startStack({
      sim: { models: [{ id: MODEL, nSlots: 4 }] },
      env: { SAVE_POLICY: 'smart', N_SLOTS: '2' },
    });
    assert.equal(stack.logs.withMsg('slot count taken from the server').length, 0);
    assert.ok(
      stack.logs
        .withMsg('server has more slots than configured; using the configured count')
        .some((l) => l.total_slots === 4 && l.configured === 2),
    );

    const startup = stack.sim.events.length;
    const lines = await fourAtOnce(stack.url, stack.logs);

    assert.deepEqual([...new Set(lines.map((l) => l.slot))].sort(), [0, 1]);
    assert.deepEqual([...new Set(eventsOf(stack.sim, 'chat', startup).map((e) => e.slot))].sort(), [0, 1]);
  });
});
