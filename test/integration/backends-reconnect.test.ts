/**
 * A backend that goes down and comes back (BACKEND_TYPE=auto): requests meanwhile get a quick 502, the first
 * request after it is back probes it again (and logs what it found), and what the proxy believed its slots held
 * is forgotten, so a conversation is restored from disk rather than trusted to still be in a slot.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chat, continued, opening } from '../support/cache.js';
import { postJson, startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle } from '../../src/sim/index.js';
import { words } from '../support/text.js';

describe('backend down, then back', () => {
  let stack: Stack;
  let revived: SimHandle | undefined;
  before(async () => {
    stack = await startStack({ env: { SAVE_POLICY: 'always' } });
  });
  after(async () => {
    await revived?.close();
    await stack.proxy.close();
  });

  it('answers 502 while it is down, then probes it again and restores from disk', async () => {
    const a = opening(951);
    const a1 = await chat(stack, a);
    const port = stack.sim.port;
    await stack.sim.close();

    const down = await postJson(stack.url, '/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: words(5, 1) }],
    });
    assert.equal(down.status, 502);
    assert.equal(down.body.error.code, 'backend_unreachable');

    revived = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'tiny', nSlots: 2 }],
      port,
      slotSavePath: stack.cacheDir,
      cacheRamMiB: 0,
      cost: { timeScale: 0, kvBytesPerToken: 1000 },
    });
    const probes = () => stack.logs.withMsg('backend kind detected').length;
    const before = probes();
    const a2 = await chat(stack, continued(a, a1.content, 952));
    assert.equal(probes(), before + 1, 'the returning backend was probed again');
    assert.equal(a2.line.decision, 'restore', 'the slot was not trusted to still hold A');
    assert.ok(a2.timings.cache_n > 50, `A reused ${a2.timings.cache_n} tokens`);
  });
});
