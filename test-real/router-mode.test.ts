/**
 * The proxy in front of a real llama-server in router mode: `--models-dir` with two models (two names for the tiny
 * model), `--models-max 1`, so a request for one model unloads the other. Pinning goes through the router, and a
 * conversation survives its model being swapped out and back in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { locateLlamaServer } from '../test/support/real-server.js';
import { nextTurn, openingOf, realChat, serverSlots, startRealStack } from '../test/support/real-stack.js';
import type { RealStack } from '../test/support/real-stack.js';

const where = locateLlamaServer();
const skip = 'skip' in where ? where.skip : false;

async function loadedModels(stack: RealStack): Promise<string[]> {
  const res = await fetch(`${stack.server.url}/models`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { data: Array<{ id: string; status: { value: string } }> };
  return body.data.filter((m) => m.status.value === 'loaded').map((m) => m.id);
}

describe('proxy in front of a real llama-server in router mode (two models, --models-max 1, -np 2)', { skip }, () => {
  let stack: RealStack;
  before(async () => {
    if ('skip' in where) return;
    stack = await startRealStack(where, {
      server: { slots: 2, router: ['alpha', 'beta'], args: ['--models-max', '1', '--cache-ram', '0'] },
    });
  });
  after(() => stack?.close());

  it("detects router mode and pins requests to the model's slots", async () => {
    const a = openingOf(401);
    const a1 = await realChat(stack, 'proxy', a, { model: 'alpha' });
    assert.equal(stack.proxy.state.backends.at(0).client.kind, 'router');
    const slots = await serverSlots(stack.server, 'alpha');
    assert.equal(slots[a1.line.slot]!.n_prompt_tokens, a1.slotTokens, 'A is in the slot the proxy pinned it to');
    const a2 = await realChat(stack, 'proxy', nextTurn(a, a1.content, 402), { model: 'alpha' });
    assert.equal(a2.line.slot, a1.line.slot);
    assert.ok(a2.timings.cache_n >= a1.promptTokens, `reused ${a2.timings.cache_n} of ${a1.promptTokens}`);
  });

  it('keeps a conversation across a swap: the other model unloads it, and it comes back restored from disk', async () => {
    const a = openingOf(411);
    const a1 = await realChat(stack, 'proxy', a, { model: 'alpha' });
    const x = await realChat(stack, 'proxy', openingOf(412), { model: 'beta' });
    assert.equal(x.line.status, 200);
    assert.deepEqual(await loadedModels(stack), ['beta'], 'beta replaced alpha');

    const a2 = await realChat(stack, 'proxy', nextTurn(a, a1.content, 413), { model: 'alpha' });
    assert.deepEqual(await loadedModels(stack), ['alpha']);
    assert.equal(a2.line.decision, 'restore');
    assert.ok(
      a2.timings.cache_n >= a1.promptTokens,
      `A reused ${a2.timings.cache_n} of ${a1.promptTokens} after the swap`,
    );
  });
});

describe(
  "router mode with the children's defaults (4 slots, unified KV buffer, idle slots cached in RAM)",
  { skip },
  () => {
    let stack: RealStack;
    before(async () => {
      if ('skip' in where) return;
      stack = await startRealStack(where, {
        server: { slots: 'auto', router: ['alpha', 'beta'], args: ['--models-max', '1'] },
        env: { IDLE_SAVE_SECONDS: '10' },
      });
    });
    after(() => stack?.close());

    it("what alpha's RAM cache alone holds is saved before beta unloads it, and nothing loads alpha again", async () => {
      const a = openingOf(421);
      const a1 = await realChat(stack, 'proxy', a, { model: 'alpha' });
      // Saved in the idle time after its answer: the proxy learns the size of a token's state from it.
      await stack.logs.waitFor((l) => l.msg === 'saved after answer' && l.key === a1.line.key, 10_000);
      const o = openingOf(422);
      const o1 = await realChat(stack, 'proxy', o, { model: 'alpha' });
      // Found cleared by the other's launch: the proxy learns that the server clears idle slots.
      const a2 = await realChat(stack, 'proxy', nextTurn(a, a1.content, 423), { model: 'alpha' });
      assert.equal(a2.line.slot_check, 'cleared-idle', JSON.stringify(a2.line));
      const b1 = await realChat(stack, 'proxy', openingOf(424), { model: 'alpha' }); // pushes a out, unsaved
      await realChat(stack, 'proxy', nextTurn(o, o1.content, 425), { model: 'alpha' }); // and b
      const rescued = () =>
        stack.logs
          .withMsg("saved from the server's RAM cache")
          .filter((l) => l.model === 'alpha')
          .map((l) => l.key);
      assert.deepEqual(rescued(), [], 'left to the RAM cache');

      const x = await realChat(stack, 'proxy', openingOf(426), { model: 'beta' });
      assert.equal(x.line.status, 200);
      assert.deepEqual(rescued().sort(), [a2.line.key, b1.line.key].sort(), 'rescued before the swap');
      for (const line of stack.logs.withMsg("saved from the server's RAM cache"))
        assert.ok((line.cache_n as number) > 0, `loaded from the RAM cache: ${JSON.stringify(line)}`);
      // Shutdown rescues what still waits in a RAM cache: nothing does, so nothing loads alpha again.
      await stack.proxy.close();
      assert.deepEqual(await loadedModels(stack), ['beta']);
    });
  },
);

describe('router mode with room for both models (--models-max 2)', { skip }, () => {
  let stack: RealStack;
  before(async () => {
    if ('skip' in where) return;
    // Write-behind off: an answer stays unsaved unless an unload is coming.
    stack = await startRealStack(where, {
      server: { slots: 2, router: ['alpha', 'beta'], args: ['--models-max', '2', '--cache-ram', '0'] },
      env: { IDLE_SAVE_SECONDS: '0' },
    });
  });
  after(() => stack?.close());

  it("a request for the model not loaded saves nothing first: the router's max_instances says both fit", async () => {
    const a1 = await realChat(stack, 'proxy', openingOf(431), { model: 'alpha' });
    const b1 = await realChat(stack, 'proxy', openingOf(432), { model: 'beta' });
    assert.equal(b1.line.status, 200);
    assert.deepEqual(stack.logs.withMsg('saved before model swap'), []);
    assert.deepEqual((await loadedModels(stack)).sort(), ['alpha', 'beta']);
    // Alpha's conversation is still in its slot: its next turn reuses it.
    const a2 = await realChat(stack, 'proxy', nextTurn(openingOf(431), a1.content, 433), { model: 'alpha' });
    assert.equal(a2.line.decision, 'resident', JSON.stringify(a2.line));
    assert.ok(a2.timings.cache_n >= a1.promptTokens, `reused ${a2.timings.cache_n} of ${a1.promptTokens}`);
  });
});
