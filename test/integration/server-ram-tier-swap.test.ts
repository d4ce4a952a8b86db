/**
 * Behind llama-swap, in front of model servers that clear idle slots (llama-server's default configuration), answers
 * are left to a model's RAM cache and rescued to disk within the loss window (see ram-rescue.ts). That cache dies with
 * the model's process: a request for another model rescues what it holds first, and after an unload the proxy did
 * not cause (llama-swap's ttl, another client) what was there is given up. Either way no rescue loads the model again
 * by itself, and no turn is sent to a RAM cache that is gone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chat, continued, exists, keyOf, logLineAfter, metaPath, opening } from '../support/cache.js';
import { api } from '../support/proxycache-api.js';
import { parseProm, valueOf } from '../support/prom-text.js';
import type { ChatResult, Message } from '../support/cache.js';
import { eventsOf } from '../support/sim-helpers.js';
import { startLlamaSwapStack } from '../support/llama-swap-stack.js';
import { postJson } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { stacksPerTest } from '../support/tapped-stack.js';
import { words } from '../support/text.js';

const A = 'model-a';
const B = 'model-b';
const short = (messages: readonly Message[]) => keyOf(messages, A).slice(0, 16);

interface Turn {
  messages: Message[];
  result: ChatResult;
}

async function turnOnA(stack: Stack, messages: Message[]): Promise<Turn> {
  return { messages, result: await chat(stack, messages, { model: A }) };
}

/**
 * Model A's server found clearing idle slots, and two of its conversations left to its RAM cache unsaved: `a`, then
 * `b`, each pushed out of its slot by the next launch. The first answer is saved after its answer (the proxy learns
 * the size of a token's state from it: until then nothing is left to the RAM cache).
 */
async function leaveTwoInRam(stack: Stack): Promise<{ a: Turn; b: Turn }> {
  const first = await turnOnA(stack, opening(5101));
  await logLineAfter(stack.logs, 0, 'saved after answer', (l) => l.key === short(first.messages));
  const other = await turnOnA(stack, opening(5102));
  // Believed resident, found cleared by the other's launch: the proxy learns that the server clears idle slots.
  const a = await turnOnA(stack, continued(first.messages, first.result.content, 5103));
  assert.equal(a.result.line.slot_check, 'cleared-idle', JSON.stringify(a.result.line));
  const b = await turnOnA(stack, opening(5104)); // its launch pushes a out
  await turnOnA(stack, continued(other.messages, other.result.content, 5105)); // and this one b
  const savedKeys = eventsOf(stack.sim, 'save').map((e) => e.filename);
  for (const left of [a, b]) assert.ok(!savedKeys.includes(keyOf(left.messages, A)), 'left to the RAM cache unsaved');
  return { a, b };
}

/** Tokens the slot held after a turn: what the next turn of that conversation can reuse. */
const heldAfter = (turn: Turn) => turn.result.timings.cache_n + turn.result.timings.prompt_n;
const ramCacheOnly = async (stack: Stack) =>
  valueOf(parseProm((await api(stack.url, 'GET', '/metrics')).body), 'proxycache_ram_cache_only');
const loads = (stack: Stack) => eventsOf(stack.sim, 'load').map((e) => e.model);

describe("a model's RAM cache behind llama-swap", { timeout: 60_000 }, () => {
  const stacks = stacksPerTest();
  const start = () =>
    startLlamaSwapStack([A, B], {
      sim: { kvUnified: true, cacheRamMiB: 8192 },
      env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '10' },
    });

  it('what it alone holds is saved before a request for another model unloads it; nothing loads that model again', async () => {
    const stack = stacks.keep(await start());
    const { a, b } = await leaveTwoInRam(stack);
    assert.equal(await ramCacheOnly(stack), 2, 'what a restart now would lose');
    const mark = stack.sim.events.length;
    const onB = await chat(stack, opening(5106), { model: B });
    assert.equal(onB.line.status, 200);
    const after = stack.sim.events.slice(mark);
    const loadB = after.findIndex((e) => e.type === 'load' && e.model === B);
    for (const left of [a, b]) {
      const saved = after.findIndex((e) => e.type === 'save' && e.filename === keyOf(left.messages, A) && e.ok);
      assert.ok(saved >= 0 && saved < loadB, `saved (#${saved}) before B was loaded (#${loadB})`);
    }
    const replays = eventsOf(stack.sim, 'chat', mark).filter((e) => e.model === A);
    assert.ok(
      replays.every((e) => e.ram_hit && e.prompt_n <= 1),
      `brought back from the RAM cache, not prefilled: ${JSON.stringify(replays)}`,
    );
    assert.equal(await ramCacheOnly(stack), 0);
    // Shutdown rescues what still waits in a RAM cache: nothing does, so nothing loads A again.
    await stack.proxy.close();
    assert.deepEqual(loads(stack), [A, B]);
  });

  it('two requests for another model at once: neither lets the swap happen before the rescues are done', async () => {
    const stack = stacks.keep(await start());
    const { a, b } = await leaveTwoInRam(stack);
    const mark = stack.sim.events.length;
    const both = await Promise.all([
      chat(stack, opening(5112), { model: B }),
      chat(stack, opening(5113), { model: B }),
    ]);
    for (const r of both) assert.equal(r.line.status, 200);
    const after = stack.sim.events.slice(mark);
    const loadB = after.findIndex((e) => e.type === 'load' && e.model === B);
    for (const left of [a, b]) {
      const saved = after.findIndex((e) => e.type === 'save' && e.filename === keyOf(left.messages, A) && e.ok);
      assert.ok(saved >= 0 && saved < loadB, `saved (#${saved}) before B was loaded (#${loadB})`);
    }
    await stack.proxy.close();
    assert.deepEqual(loads(stack), [A, B]);
  });

  it('after an unload the proxy did not cause, what was there is given up and told; its next turn goes to disk', async () => {
    const stack = stacks.keep(await start());
    const { a, b } = await leaveTwoInRam(stack);
    // Another client asks for model B behind the proxy's back: A is unloaded, its RAM cache with it.
    const other = { model: B, messages: [{ role: 'user', content: words(70, 5107) }], max_tokens: 4 };
    assert.equal((await postJson(stack.sim.url, '/v1/chat/completions', other)).status, 200);
    assert.deepEqual(loads(stack), [A, B]);

    const mark = stack.logs.lines.length;
    const next = await turnOnA(stack, continued(a.messages, a.result.content, 5108));
    const lost = stack.logs.lines
      .slice(mark)
      .filter((l) => String(l.msg).startsWith("a conversation left to the server's RAM cache was lost"));
    assert.deepEqual(lost.map((l) => l.key).sort(), [short(a.messages), short(b.messages)].sort());
    // Its first turn is on disk: the restore gives back all but the turn that was lost with the RAM cache.
    assert.equal(next.result.line.decision, 'restore', JSON.stringify(next.result.line));
    assert.deepEqual(
      stack.logs.lines.filter((l) => String(l.msg).startsWith("the server's RAM cache no longer held")),
      [],
    );
    await stack.proxy.close();
    assert.deepEqual(loads(stack), [A, B, A], 'A loaded again for the turn only');
  });

  it('POST /proxycache/save before an unload from elsewhere brings what waits in the RAM cache to disk too', async () => {
    const stack = stacks.keep(await start());
    const { a, b } = await leaveTwoInRam(stack);
    const res = await api(stack.url, 'POST', '/proxycache/save');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.from_ram_cache, { saved: 2, not_saved: 0 });
    for (const left of [a, b]) assert.ok(await exists(metaPath(stack.metaDir, keyOf(left.messages, A))));
    const other = { model: B, messages: [{ role: 'user', content: words(70, 5110) }], max_tokens: 4 };
    assert.equal((await postJson(stack.sim.url, '/v1/chat/completions', other)).status, 200);
    const next = await turnOnA(stack, continued(b.messages, b.result.content, 5111));
    assert.equal(next.result.line.decision, 'restore', JSON.stringify(next.result.line));
    assert.ok(next.result.timings.cache_n >= heldAfter(b), JSON.stringify(next.result.timings));
  });

  it('an unload no request of the proxy saw: the rescue finds the model gone and loads nothing', async () => {
    const stack = stacks.keep(await start());
    const { a, b } = await leaveTwoInRam(stack);
    const other = { model: B, messages: [{ role: 'user', content: words(70, 5109) }], max_tokens: 4 };
    assert.equal((await postJson(stack.sim.url, '/v1/chat/completions', other)).status, 200);
    const mark = stack.logs.lines.length;
    // Shutdown runs the rescues that wait, as their timers would.
    await stack.proxy.close();
    const lost = stack.logs.lines
      .slice(mark)
      .filter((l) => String(l.msg).startsWith("a conversation left to the server's RAM cache was lost"));
    assert.deepEqual(lost.map((l) => l.key).sort(), [short(a.messages), short(b.messages)].sort());
    assert.deepEqual(loads(stack), [A, B]);
  });
});
