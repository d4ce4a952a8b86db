/**
 * Trust nothing the server did not confirm (issue 7.5, 7.6): a save whose token count does not match what the
 * slot is believed to hold is discarded; a slot believed to hold a conversation is checked with GET /slots when
 * the backend was quiet; a server that clears idle slots at each task start (llama-server's default
 * configuration) is found out at start-up, and the proxy saves before each task and restores from disk.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  chat,
  chatEvents,
  continued,
  exists,
  keyOf,
  logLineAfter,
  metaPath,
  opening,
  slotFileEvents,
} from '../support/cache.js';
import { postJson, startStack } from '../support/stack.js';
import { stacksPerTest, startTappedStack } from '../support/tapped-stack.js';
import type { TappedStack } from '../support/tapped-stack.js';
import { RECHECK_AFTER_QUIET_MS } from '../../src/generation/slot-truth.js';
import { IDLE_CLEARING_FOUND } from '../../src/backend/backend.js';
import { words } from '../support/text.js';

/** A slot as the simulator's `GET /slots` shows it. */
interface SimSlot {
  id: number;
  is_processing: boolean;
  next_token?: Array<{ n_remain: number; n_decoded: number }>;
}
/** The simulator's own GET /slots (not through the proxy, which refuses slot routes). */
async function simSlots(simUrl: string): Promise<SimSlot[]> {
  return (await fetch(`${simUrl}/slots`)).json() as Promise<SimSlot[]>;
}

/** Poll `check` until it holds, failing after `ms`. */
async function waitFor(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A proxy behind a tap in front of a simulator in llama-server's default configuration (it clears idle slots at each
 * task start), found out at start-up. Write-behind off by default (`idleSaveSeconds` 0), and with it the answers
 * left to the server's RAM cache (RamRescues): only the saves before a task start keep a conversation.
 * `realTime`: 20 ms a generated token, so that one task can run while another starts. `diskOnly`: the proxy is told
 * the server has no RAM cache (SERVER_CACHE_RAM_MIB=0), so every later turn comes from disk.
 */
async function startClearingServer({
  realTime,
  diskOnly = false,
  idleSaveSeconds = 0,
}: {
  realTime: boolean;
  diskOnly?: boolean;
  idleSaveSeconds?: number;
}): Promise<TappedStack> {
  const cost = realTime ? { timeScale: 1, kvBytesPerToken: 1000, prefillMsPerToken: 0.01, modelLoadMs: 0 } : undefined;
  const tapped = await startTappedStack({
    sim: { models: [{ id: 'tiny' }], cacheRamMiB: 8192, ...(cost && { cost }) },
    env: {
      SAVE_POLICY: 'smart',
      N_SLOTS: '4',
      IDLE_SAVE_SECONDS: String(idleSaveSeconds),
      ...(diskOnly && { SERVER_CACHE_RAM_MIB: '0' }),
    },
  });
  await logLineAfter(
    tapped.stack.logs,
    tapped.logMark,
    IDLE_CLEARING_FOUND,
    (l) => l.backend === tapped.tap.url,
    15_000,
  );
  return tapped;
}

const short = (messages: Parameters<typeof keyOf>[0]) => keyOf(messages).slice(0, 16);

/**
 * x2's task ends on the server, but the proxy reads that end only after another task started there and cleared
 * x2's slot; x2's next turn (x3) comes while that other request still runs. `behindTheProxysBack`: the other task
 * is another client's, sent to the server directly, so the proxy could not book x2's save for its end
 * (BookedSaves) and nothing of x2 reaches the disk. Returns x2's answer and x3.
 */
async function nextTurnAfterUnseenClearing(
  tapped: TappedStack,
  x2: ReturnType<typeof opening>,
  { behindTheProxysBack = false } = {},
) {
  const { stack: s, tap } = tapped;
  const lastUser = x2.at(-1)!.content;
  const x2Answer = tap.holdAnswer(
    (r) => r.path === '/v1/chat/completions' && r.body?.messages?.at(-1)?.content === lastUser,
  );
  const markX2 = s.logs.lines.length;
  const x2Done = s.openai.chat.completions.create({ model: 'tiny', messages: x2, max_tokens: 8 });
  await x2Answer.arrived;
  const other = opening(3604);
  let otherDone: Promise<unknown>;
  let releaseOther = () => undefined as void;
  if (behindTheProxysBack) {
    otherDone = postJson(s.sim.url, '/v1/chat/completions', { model: 'tiny', messages: other, max_tokens: 8 });
    await otherDone;
  } else {
    const otherAnswer = tap.holdAnswer(
      (r) => r.path === '/v1/chat/completions' && r.body?.messages?.[0]?.content === other[0]!.content,
    );
    otherDone = s.openai.chat.completions.create({ model: 'tiny', messages: other, max_tokens: 8 });
    await otherAnswer.arrived;
    releaseOther = () => otherAnswer.release();
  }
  x2Answer.release();
  const x2Reply = await x2Done;
  await logLineAfter(s.logs, markX2, 'chat', (l) => l.key === short(x2));
  const x3Messages = continued(x2, x2Reply.choices[0]?.message.content ?? '', 3605);
  const x3 = await chat(s, x3Messages);
  releaseOther();
  await otherDone;
  return { x2Reply, x3Messages, x3 };
}

describe('the proxy trusts only what the server confirms', { timeout: 60_000 }, () => {
  const stacks = stacksPerTest();

  it('a save of a slot another client overwrote is discarded: file deleted, no meta, nothing restored from it', async () => {
    const stack = stacks.keep(await startStack({ env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '0' } }));
    const a = opening(3101);
    const first = await chat(stack, a);
    // Another client uses a's slot directly, with a longer conversation of its own.
    const other = await postJson(stack.sim.url, '/v1/chat/completions', {
      model: 'tiny',
      max_tokens: 4,
      id_slot: first.line.slot,
      messages: [{ role: 'user', content: words(300, 3102) }],
    });
    assert.equal(other.status, 200);
    await chat(stack, opening(3103));
    const evicting = await chat(stack, opening(3104)); // a's slot is the least recently used: evicted with a save
    assert.equal(evicting.line.slot, first.line.slot);
    assert.equal(evicting.line.evict_save.ok, false, JSON.stringify(evicting.line.evict_save));
    assert.equal(evicting.line.evict_save.unverified, true);
    assert.equal(
      await exists(join(stack.cacheDir, keyOf(a))),
      false,
      "the other client's KV is not kept under a's key",
    );
    assert.equal(await exists(metaPath(stack.metaDir, keyOf(a))), false);
    const back = await chat(stack, continued(a, first.content, 3105));
    assert.notEqual(back.line.decision, 'restore');
  });

  it('after a quiet spell, a slot that lost its conversation (server restarted) is restored from disk, not trusted', async () => {
    const stack = stacks.keep(await startStack({ env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '0.4' } }));
    const a = opening(3201);
    const mark = stack.logs.lines.length;
    const first = await chat(stack, a);
    await logLineAfter(stack.logs, mark, 'saved after answer', (l) => l.key === short(a));
    await stack.sim.restart();
    // The proxy hears nothing from the backend for longer than its re-check threshold.
    await new Promise((resolve) => setTimeout(resolve, RECHECK_AFTER_QUIET_MS + 100));
    const back = await chat(stack, continued(a, first.content, 3202));
    assert.equal(back.line.slot_check, 'restarted');
    assert.equal(back.line.decision, 'restore');
    assert.ok(back.timings.cache_n >= first.timings.cache_n + first.timings.prompt_n, JSON.stringify(back.timings));
  });

  it('a server that clears idle slots (no -np) is detected at start-up; told it has no RAM cache, the proxy restores every later turn from disk', async () => {
    // The simulator's default: 4 slots on one unified KV buffer, idle slots moved to the RAM cache at each task.
    const stack = stacks.keep(
      await startStack({
        sim: { models: [{ id: 'tiny' }], cacheRamMiB: 8192 },
        env: { SAVE_POLICY: 'smart', N_SLOTS: '4', SERVER_CACHE_RAM_MIB: '0' },
      }),
    );
    await logLineAfter(stack.logs, 0, IDLE_CLEARING_FOUND, (l) => l.seen_by === 'start-up probe');
    const conversations = [opening(3301), opening(3302), opening(3303)];
    const last = [];
    for (const c of conversations) last.push({ messages: c, result: await chat(stack, c) });
    for (let turn = 0; turn < 2; turn++) {
      for (const [i, conv] of last.entries()) {
        const messages = continued(conv.messages, conv.result.content, 3400 + turn * 10 + i);
        const result = await chat(stack, messages);
        const before = conv.result.timings.cache_n + conv.result.timings.prompt_n;
        assert.ok(['restore', 'resident'].includes(result.line.decision), JSON.stringify(result.line));
        assert.ok(
          result.timings.cache_n >= before,
          `turn ${turn} of ${i}: ${JSON.stringify(result.timings)} after ${before}`,
        );
        last[i] = { messages, result };
      }
    }
    const failedSaves = slotFileEvents(stack.sim, 'save').filter((e) => !e.ok || e.n_tokens === 0);
    assert.deepEqual(failedSaves, [], 'no save found its slot already cleared');
  });

  it("a BACKENDS entry's cache_ram_mib overrides SERVER_CACHE_RAM_MIB for its server: told 0, the proxy restores from disk", async () => {
    // The server has a RAM cache, and SERVER_CACHE_RAM_MIB says so; the entry says it has none.
    const stack = stacks.keep(
      await startStack({
        sim: { models: [{ id: 'tiny' }], cacheRamMiB: 8192 },
        env: { SAVE_POLICY: 'smart', N_SLOTS: '4', SERVER_CACHE_RAM_MIB: '8192' },
      }),
    );
    const mark = stack.logs.lines.length;
    await stack.restartProxy({ BACKENDS: JSON.stringify([{ url: stack.sim.url, n_slots: 4, cache_ram_mib: 0 }]) });
    await logLineAfter(stack.logs, mark, IDLE_CLEARING_FOUND, (l) => l.seen_by === 'start-up probe');
    const last = [];
    for (const seed of [3351, 3352, 3353])
      last.push({ messages: opening(seed), result: await chat(stack, opening(seed)) });
    for (const [i, conv] of last.entries()) {
      const messages = continued(conv.messages, conv.result.content, 3360 + i);
      const result = await chat(stack, messages);
      // With SERVER_CACHE_RAM_MIB's 8192 for it, these turns come from the server's RAM cache ('server_cache').
      assert.equal(result.line.decision, 'restore', JSON.stringify(result.line));
      assert.ok(result.timings.cache_n >= conv.result.timings.cache_n + conv.result.timings.prompt_n);
    }
    const status = (await (await fetch(`${stack.url}/proxycache/status`)).json()) as {
      backends: Array<{ ram_cache_mib: number }>;
    };
    assert.equal(status.backends[0]!.ram_cache_mib, 0, 'the status API shows the size the proxy works with');
  });

  it('on a clearing server, a launch books the save of a task that ended unseen, and sends its own task once that save is done: not before, nor after the end of its answer', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false, diskOnly: true }));
    const { stack: s, tap } = tapped;
    const [b, c] = [opening(3501), opening(3503)];
    // b ends on the server, but the proxy sees the end of b's answer only when the test says so.
    const bAnswer = tap.holdAnswer(
      (r) => r.path === '/v1/chat/completions' && r.body?.messages?.[0]?.content === b[0]!.content,
    );
    const markB = s.logs.lines.length;
    const bDone = s.openai.chat.completions.create({ model: 'tiny', messages: b, max_tokens: 2 });
    await bAnswer.arrived;
    const markC = { log: s.logs.lines.length, tap: tap.requests.length };
    // The save reaches the server late (two connections, two server threads): c's task waits for its answer.
    const bSaveOnItsWay = tap.hold((r) => r.path.includes('action=save'));
    const cTask = tap.hold(
      (r) => r.path === '/v1/chat/completions' && r.body?.messages?.[0]?.content === c[0]!.content,
    );
    const cDone = s.openai.chat.completions.create({ model: 'tiny', messages: c, max_tokens: 2 });
    await bSaveOnItsWay.arrived;
    const wentAhead = await Promise.race([
      cTask.arrived.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300)),
    ]);
    assert.equal(wentAhead, false, "c's task went to the server before b's save was done");
    bSaveOnItsWay.release();
    await cTask.arrived;
    cTask.release();
    await cDone;
    // c was answered while b's answer was still held: its launch did not wait for b's end.
    await logLineAfter(s.logs, markC.log, 'chat', (l) => l.key === short(c));
    // The booked save reached the server before c's task, which would clear b's slot.
    const sent = tap.requests
      .slice(markC.tap)
      .map((r) => r.path)
      .filter((path) => path !== '/slots');
    assert.match(sent[0] ?? '', /^\/slots\/\d+\?action=save$/, JSON.stringify(sent));
    assert.equal(sent[1], '/v1/chat/completions', JSON.stringify(sent));
    bAnswer.release();
    const bReply = await bDone;
    const bLine = await logLineAfter(s.logs, markB, 'chat', (l) => l.key === short(b));
    const bSave = bLine.save as { ok: boolean; booked?: boolean; tokens?: number } | undefined;
    assert.equal(bSave?.booked, true, JSON.stringify(bLine));
    assert.equal(bSave?.ok, true, JSON.stringify(bLine));
    const bSaves = slotFileEvents(s.sim, 'save').filter((e) => e.filename.includes(keyOf(b)));
    assert.equal(bSaves.length, 1, JSON.stringify(bSaves));
    assert.ok(
      bSaves[0]!.ok && bSaves[0]!.n_tokens > 64,
      `saved before c's launch cleared it: ${JSON.stringify(bSaves)}`,
    );
    const next = await chat(s, continued(b, bReply.choices[0]?.message.content ?? '', 3504), { maxTokens: 2 });
    assert.equal(next.line.decision, 'restore', JSON.stringify(next.line));
    assert.ok(next.timings.cache_n > 64, JSON.stringify(next.timings));
  });

  it('on a clearing server, a slot whose task ended just before another task started is checked before it is trusted', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false, diskOnly: true }));
    const { stack: s } = tapped;
    const x1 = opening(3601);
    const first = await chat(s, x1);
    await chat(s, opening(3602)); // its start saves x1 (clearing_saves) and clears x1's slot
    const x2 = continued(x1, first.content, 3603);
    const { x3 } = await nextTurnAfterUnseenClearing(tapped, x2);
    assert.equal(x3.line.slot_check, 'cleared-idle', JSON.stringify(x3.line));
    // Disk has x1's turn (saved before the second conversation started): a sure restore, x2's growth prefilled.
    assert.equal(x3.line.decision, 'restore', JSON.stringify(x3.line));
    assert.ok(x3.timings.cache_n >= first.timings.cache_n + first.timings.prompt_n, JSON.stringify(x3.timings));
  });

  it('on a clearing server, a conversation cleared before any of it was saved comes back whole from the server RAM cache, unpinned', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false }));
    const { stack: s } = tapped;
    const x1 = opening(3601);
    const first = await chat(s, x1);
    // x2 continues x1 on its slot at once: no task start in between, so nothing of the conversation is on disk.
    const x2 = continued(x1, first.content, 3603);
    const { x2Reply, x3Messages, x3 } = await nextTurnAfterUnseenClearing(tapped, x2, { behindTheProxysBack: true });
    assert.equal(x3.line.slot_check, 'cleared-idle', JSON.stringify(x3.line));
    // Disk has nothing of it; the server's RAM cache has x2 whole: x3 goes unpinned and reuses all of x2.
    assert.equal(x3.line.decision, 'server_cache', JSON.stringify(x3.line));
    const x2Timings = (x2Reply as unknown as { timings: { cache_n: number; prompt_n: number } }).timings;
    assert.ok(x3.timings.cache_n >= x2Timings.cache_n + x2Timings.prompt_n, JSON.stringify(x3.timings));
    // The proxy learnt the slot the server chose: x3's next turn is resident there.
    const x4 = await chat(s, continued(x3Messages, x3.content, 3606));
    assert.equal(x4.line.decision, 'resident', JSON.stringify(x4.line));
    assert.equal(x4.line.slot, x3.line.slot, JSON.stringify({ x3: x3.line.slot, x4: x4.line.slot }));
    assert.ok(x4.timings.cache_n >= x3.timings.cache_n + x3.timings.prompt_n, JSON.stringify(x4.timings));
  });

  it('on a clearing server, small requests go unpinned: the RAM cache serves the prefix they share', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false }));
    const { stack: s, tap } = tapped;
    // A title request, as chat clients send after each turn: the same instructions, a different conversation.
    const instructions = words(30, 3801);
    const titleRequest = (seed: number) => [
      { role: 'system' as const, content: instructions },
      { role: 'user' as const, content: words(8, seed) },
    ];
    const first = await chat(s, titleRequest(3802));
    assert.equal(first.line.decision, 'small', JSON.stringify(first.line));
    await chat(s, opening(3803)); // its launch moves the title request into the RAM cache and clears its slot
    const mark = { tap: tap.requests.length, sim: s.sim.events.length };
    const second = await chat(s, titleRequest(3804));
    assert.equal(second.line.decision, 'small', JSON.stringify(second.line));
    const sent = tap.requests.slice(mark.tap).find((r) => r.path === '/v1/chat/completions');
    assert.equal(sent?.body?.id_slot, -1, JSON.stringify(sent?.body));
    // Pinned to its cleared slot it would have reused nothing; unpinned, the shared instructions come from RAM.
    const ran = chatEvents(s.sim, mark.sim).at(-1)!;
    assert.equal(ran.ram_hit, true, JSON.stringify(ran));
    assert.ok(second.timings.cache_n >= 30, JSON.stringify(second.timings));
    // Nothing a small request leaves is saved: the proxy does not look for its slot, and its line names none.
    assert.equal(second.line.slot, undefined, JSON.stringify(second.line));
  });

  it('on a clearing server, a cold big request goes unpinned, without waiting for a small task, and the proxy finds the slot the server chose', async () => {
    // 20 ms a generated token in real time: the small request still generates when the big one arrives.
    const tapped = stacks.keep(await startClearingServer({ realTime: true }));
    const { stack: s, tap } = tapped;
    let smallEnded = false;
    const smallDone = chat(s, [{ role: 'user', content: words(8, 4101) }], { maxTokens: 40 }).finally(
      () => (smallEnded = true),
    );
    await waitFor(async () => (await simSlots(s.sim.url)).some((slot) => slot.is_processing), 'the small task running');
    const mark = { tap: tap.requests.length, sim: s.sim.events.length };
    const a = opening(4102);
    const first = await chat(s, a, { maxTokens: 2 });
    assert.equal(first.line.decision, 'cold', JSON.stringify(first.line));
    const sent = tap.requests.slice(mark.tap).find((r) => r.path === '/v1/chat/completions');
    assert.equal(sent?.body?.id_slot, -1, JSON.stringify(sent?.body));
    // Pinned to the slot the server gave the small task, it would have waited for the small answer's end.
    assert.equal(smallEnded, false, 'the big request was answered after the small one');
    const ran = chatEvents(s.sim, mark.sim).find((e) => e.prompt_n > 50)!;
    assert.equal(first.line.slot, ran.slot, JSON.stringify({ line: first.line.slot, ran: ran.slot }));
    // Found there, the conversation's next turn is resident on it.
    const next = await chat(s, continued(a, first.content, 4103), { maxTokens: 2 });
    assert.equal(next.line.decision, 'resident', JSON.stringify(next.line));
    assert.equal(next.line.slot, ran.slot);
    assert.ok(next.timings.cache_n >= first.timings.cache_n + first.timings.prompt_n, JSON.stringify(next.timings));
    await smallDone;
  });

  it('on a clearing server, a task generating when another launches has its save booked for its end; that launch does not wait', async () => {
    // 20 ms a generated token in real time, so that the other request arrives while the first one is generating.
    const tapped = stacks.keep(await startClearingServer({ realTime: true }));
    const { stack: s } = tapped;
    const [a, c] = [opening(3701), opening(3702)];
    const markA = s.logs.lines.length;
    const aDone = chat(s, a, { maxTokens: 40 });
    // a is generating its last few tokens when c arrives.
    await waitFor(
      async () =>
        (await simSlots(s.sim.url)).some(
          (slot) =>
            slot.is_processing &&
            (slot.next_token?.[0]?.n_remain ?? 99) <= 8 &&
            (slot.next_token?.[0]?.n_decoded ?? 0) > 0,
        ),
      'a near its n_predict',
    );
    const markC = s.logs.lines.length;
    await s.openai.chat.completions.create({ model: 'tiny', messages: c, max_tokens: 2 });
    const aResult = await aDone;
    const cLine = await logLineAfter(s.logs, markC, 'chat', (l) => l.key === short(c));
    assert.equal(
      cLine.clearing_saves,
      undefined,
      `c neither waited for a's end nor saved it: ${JSON.stringify(cLine)}`,
    );
    const aLine = await logLineAfter(s.logs, markA, 'chat', (l) => l.key === short(a));
    const aSave = aLine.save as { ok: boolean; booked?: boolean } | undefined;
    assert.equal(aSave?.booked, true, JSON.stringify(aLine));
    assert.equal(aSave?.ok, true, JSON.stringify(aLine));
    const aSaves = slotFileEvents(s.sim, 'save').filter((e) => e.filename.includes(keyOf(a)));
    const aTokens = aResult.timings.cache_n + aResult.timings.prompt_n + aResult.timings.predicted_n - 1;
    assert.deepEqual(
      aSaves.map((e) => [e.ok, e.n_tokens]),
      [[true, aTokens]],
      'the save held the state a left, prompt and answer',
    );
  });

  it('on a clearing server, while another request of ours runs, a big task has its save booked at its first token', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false }));
    const { stack: s, tap } = tapped;
    const [a, b] = [opening(3801), opening(3802)];
    // b holds a slot of ours throughout a: its answer is held at the tap (so it is no task to book itself).
    const bAnswer = tap.holdAnswer(
      (r) => r.path === '/v1/chat/completions' && r.body?.messages?.[0]?.content === b[0]!.content,
    );
    const bDone = chat(s, b, { maxTokens: 2, stream: true });
    await bAnswer.arrived;
    const markA = s.logs.lines.length;
    const aResult = await chat(s, a, { maxTokens: 4, stream: true });
    const aLine = await logLineAfter(s.logs, markA, 'chat', (l) => l.key === short(a));
    // No launch came during a's answer, and write-behind is far away: only the booking saved it.
    const aSave = aLine.save as { ok: boolean; booked?: boolean } | undefined;
    assert.equal(aSave?.booked, true, JSON.stringify(aLine));
    assert.equal(aSave?.ok, true, JSON.stringify(aLine));
    const aTokens = aResult.timings.cache_n + aResult.timings.prompt_n + aResult.timings.predicted_n - 1;
    const aSaves = slotFileEvents(s.sim, 'save').filter((e) => e.filename.includes(keyOf(a)));
    assert.deepEqual(
      aSaves.map((e) => [e.ok, e.n_tokens]),
      [[true, aTokens]],
    );
    bAnswer.release();
    await bDone;
  });

  it('on a clearing server, a booked save of a task whose client went away keeps nothing: no file, no meta', async () => {
    // 20 ms a generated token in real time: a is still generating when c's launch books its save.
    const tapped = stacks.keep(await startClearingServer({ realTime: true }));
    const { stack: s } = tapped;
    const [a, c] = [opening(3901), opening(3902)];
    const markA = s.logs.lines.length;
    const gone = new AbortController();
    const aStream = await s.openai.chat.completions.create(
      { model: 'tiny', messages: a, max_tokens: 60, stream: true },
      { signal: gone.signal },
    );
    const aRead = (async () => {
      for await (const chunk of aStream) void chunk; // until the abort below ends it
    })().catch(() => undefined);
    await waitFor(
      async () =>
        (await simSlots(s.sim.url)).some((slot) => slot.is_processing && (slot.next_token?.[0]?.n_decoded ?? 0) > 2),
      'a generating',
    );
    const cLineMark = s.logs.lines.length;
    const cDone = s.openai.chat.completions.create({ model: 'tiny', messages: c, max_tokens: 2 });
    await logLineAfter(s.logs, cLineMark, 'chat', (l) => l.key === short(c));
    gone.abort();
    await aRead;
    await cDone;
    const aLine = await logLineAfter(s.logs, markA, 'chat', (l) => l.key === short(a));
    const aSave = aLine.save as { ok: boolean; booked?: boolean; error?: string } | undefined;
    assert.equal(aSave?.booked, true, JSON.stringify(aLine));
    assert.equal(aSave?.ok, false, JSON.stringify(aLine));
    assert.equal(await exists(join(s.cacheDir, keyOf(a))), false, 'the half-answered state is not kept');
    assert.equal(await exists(metaPath(s.metaDir, keyOf(a))), false);
    // The conversation starts over cold, and later requests are served as usual.
    const again = await chat(s, a, { maxTokens: 2 });
    assert.notEqual(again.line.decision, 'restore', JSON.stringify(again.line));
  });

  it('on a clearing server, a restore waits until an unpinned task sent before it runs on the server: its late launch would clear the restored slot', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false, diskOnly: true }));
    const { stack: s, tap } = tapped;
    const x1 = opening(4001);
    const first = await chat(s, x1);
    await chat(s, opening(4002)); // its start saves x1 and clears x1's slot: x1's next turn is a restore
    // Title requests share their instructions: the server puts the next one on this one's slot (the most similar).
    const instructions = words(30, 4003);
    const titleRequest = (seed: number) => [
      { role: 'system' as const, content: instructions },
      { role: 'user' as const, content: words(8, seed) },
    ];
    await chat(s, titleRequest(4005));
    // A title request on its way to the server: llama-server templates and tokenizes a request before it queues
    // its task, so a restore sent after it can arrive first (held here at the tap to make that moment long).
    const title = titleRequest(4006);
    const titleOnItsWay = tap.hold(
      (r) => r.path === '/v1/chat/completions' && r.body?.messages?.at(-1)?.content === title[1]!.content,
    );
    const titleDone = chat(s, title, { stream: true });
    await titleOnItsWay.arrived;
    const x2 = continued(x1, first.content, 4004);
    const x2Task = tap.hold(
      (r) => r.path === '/v1/chat/completions' && r.body?.messages?.at(-1)?.content === x2.at(-1)!.content,
    );
    const markX2 = s.logs.lines.length;
    const x2Done = chat(s, x2);
    // While the title is on its way, x2 restores nothing and sends no task (a short window to see that nothing
    // comes; without the wait, x2's task arrives within milliseconds, its restore done).
    const wentAhead = await Promise.race([
      x2Task.arrived.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300)),
    ]);
    // The title's task reaches the server and starts (clearing the idle slots); then x2's.
    titleOnItsWay.release();
    await titleDone;
    await x2Task.arrived;
    x2Task.release();
    const x2Result = await x2Done;
    const x2Line = await logLineAfter(s.logs, markX2, 'chat', (l) => l.key === short(x2));
    assert.equal(x2Line.decision, 'restore', JSON.stringify(x2Line));
    assert.equal(wentAhead, false, 'x2 restored and launched while the title was still on its way');
    assert.ok(
      x2Result.timings.cache_n >= first.timings.cache_n + first.timings.prompt_n,
      `the restored conversation was still there at x2's launch: ${JSON.stringify(x2Result.timings)}`,
    );
  });

  it('on a clearing server that restarted, the next launches still save what the slots they clear alone hold', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false }));
    const { stack: s } = tapped;
    const [x1, y1] = [opening(4101), opening(4102)];
    const x = await chat(s, x1);
    const y = await chat(s, y1);
    await s.sim.restart();
    // Quiet for longer than the re-check threshold: x's next turn, counting on the server's RAM cache, finds the
    // restart by the task ids first (the backend is then forgotten) and comes back from disk.
    await new Promise((resolve) => setTimeout(resolve, RECHECK_AFTER_QUIET_MS + 100));
    const x2 = continued(x1, x.content, 4103);
    const x2Result = await chat(s, x2);
    assert.equal(x2Result.line.decision, 'restore', JSON.stringify(x2Result.line));
    // y's next turn starts while x2's state sits unsaved in its slot (write-behind is far away): its launch
    // clears that slot, so it saves x2 first, as before the restart.
    const markY = s.logs.lines.length;
    await chat(s, continued(y1, y.content, 4104));
    const yLine = await logLineAfter(s.logs, markY, 'chat', (l) => l.key === short(continued(y1, y.content, 4104)));
    const x2Saves = slotFileEvents(s.sim, 'save').filter((e) => e.filename.includes(keyOf(x2)));
    assert.ok(
      x2Saves.some((e) => e.ok && e.n_tokens > x2Result.timings.cache_n),
      `x2 saved before y's launch cleared it: ${JSON.stringify({ x2Saves, y: yLine.clearing_saves })}`,
    );
  });

  it('on a clearing server, a booked save overtaken by a task that took the slot counts its conversation as in the RAM cache', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false }));
    const { stack: s, tap } = tapped;
    const titleRequest = (seed: number) => [{ role: 'user' as const, content: words(8, seed) }];
    // A task started on another slot just before: b's first token finds the backend in use, and books b's save.
    await chat(s, titleRequest(4201));
    const b = opening(4202);
    const bSave = tap.hold((r) => r.path.includes('action=save'));
    const markB = s.logs.lines.length;
    const bDone = chat(s, b, { stream: true, maxTokens: 2 });
    await bSave.arrived;
    await waitFor(async () => !(await simSlots(s.sim.url)).some((slot) => slot.is_processing), 'b ended on the server');
    // The save reaches the server only after a title request's task, which the server puts on b's idle slot (the
    // most similar): as when a task waiting for a free slot leaves the server's deferred queue before the save.
    await chat(s, titleRequest(4203));
    bSave.release();
    const bResult = await bDone;
    const bLine = await logLineAfter(s.logs, markB, 'chat', (l) => l.key === short(b));
    const save = bLine.save as { booked?: boolean; unverified?: boolean } | undefined;
    assert.equal(save?.booked, true, JSON.stringify(bLine));
    assert.equal(save?.unverified, true, `the save found the title's state: ${JSON.stringify(bLine)}`);
    // b's state went to the RAM cache when the title took its slot: its next turn comes back from there, whole.
    const next = await chat(s, continued(b, bResult.content, 4204), { maxTokens: 2 });
    assert.equal(next.line.decision, 'server_cache', JSON.stringify(next.line));
    assert.ok(next.timings.cache_n >= bResult.timings.cache_n + bResult.timings.prompt_n, JSON.stringify(next.timings));
  });

  it('on a clearing server, the proxy looks for an unpinned task at a calm pace while no launch waits for it, and often once one does', async () => {
    // Each GET /slots takes CPU time from the server's prefill in progress (see pollPauses).
    const tapped = stacks.keep(await startClearingServer({ realTime: false }));
    const { stack: s, tap } = tapped;
    const looks = () => tap.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/slots')).length;
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const a = opening(4201);
    // Held before the server, the task cannot show in GET /slots: the proxy keeps looking for it.
    const held = tap.hold((r) => r.path === '/v1/chat/completions' && r.body?.messages?.[0]?.content === a[0]!.content);
    const first = chat(s, a, { maxTokens: 2 });
    await held.arrived;
    const calmFrom = looks();
    await sleep(400);
    const calm = looks() - calmFrom;
    // A second big request comes: its launch waits until the first task is found.
    const second = chat(s, opening(4202), { maxTokens: 2 });
    await sleep(50);
    const hurriedFrom = looks();
    const hurriedStart = performance.now();
    await waitFor(async () => looks() - hurriedFrom >= 12, '12 looks while a launch waited', 2000);
    const hurriedMs = performance.now() - hurriedStart;
    held.release();
    const [a1, b1] = await Promise.all([first, second]);
    // Every 5 ms, 400 ms would make about 65 looks; pauses doubling up to 50 ms make about 11.
    assert.ok(calm <= 16, `${calm} looks in 400 ms while nobody waited`);
    // Every 5 ms again, 12 looks take about 80 ms (240 on a loaded machine); the calm pace would take 600 or more.
    assert.ok(hurriedMs < 450, `12 looks took ${Math.round(hurriedMs)} ms while a launch waited`);
    assert.equal(a1.line.decision, 'cold', JSON.stringify(a1.line));
    assert.equal(typeof a1.line.slot, 'number', 'the first task was found on its slot');
    assert.equal(typeof b1.line.slot, 'number', 'and the second');
    assert.notEqual(a1.line.slot, b1.line.slot);
  });

  it('on a clearing server whose RAM cache has room, an answer is left there unsaved: a turn that continues in time takes it back, one that pauses is saved from it within the loss window', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false, idleSaveSeconds: 1.2 }));
    const { stack: s, tap } = tapped;
    // A first answer alone is saved in the idle time: the proxy learns the size of a token's state.
    const a1 = opening(4301);
    const mark = s.logs.lines.length;
    const first = await chat(s, a1);
    await logLineAfter(s.logs, mark, 'saved after answer', (l) => l.key === short(a1));
    // a2 continues it; b1, another conversation, launches right after a2's answer and clears a2's slot.
    const a2 = continued(a1, first.content, 4302);
    const second = await chat(s, a2);
    const b1 = opening(4303);
    const other = await chat(s, b1);
    assert.equal(second.line.save, undefined, JSON.stringify(second.line));
    assert.equal(other.line.clearing_saves, undefined, 'a2 is not saved before the launch that clears it');
    // a2's conversation continues at once: its next turn takes it back from the RAM cache, and a2 is never written.
    const third = await chat(s, continued(a2, second.content, 4304));
    assert.equal(third.line.decision, 'server_cache', JSON.stringify(third.line));
    assert.ok(third.timings.cache_n >= second.timings.cache_n + second.timings.prompt_n, JSON.stringify(third.timings));
    // b1's pauses: before its window ends, the proxy brings it back from the RAM cache and saves it.
    const rescued = await logLineAfter(
      s.logs,
      mark,
      "saved from the server's RAM cache",
      (l) => l.key === short(b1),
      5000,
    );
    // Replayed without a pin, marked (task-mark.ts), with its reply as a last assistant message, which the server
    // continues: prompt and reply come back, and the save is of the slot the mark names.
    const replay = tap.requests.find(
      (r) => r.body?.n_predict === 0 && r.body?.messages?.[0]?.content === b1[0]!.content,
    );
    assert.equal(replay?.body?.id_slot, -1, JSON.stringify(replay?.body));
    assert.equal(typeof replay?.body?.seed, 'number', 'the replay carries a mark');
    const b1Held = other.timings.cache_n + other.timings.prompt_n + other.timings.predicted_n;
    assert.equal(rescued.save.ok, true, JSON.stringify(rescued));
    assert.equal(rescued.save.tokens, b1Held, `its prompt and its reply: ${JSON.stringify(rescued)}`);
    assert.ok(rescued.cache_n >= b1Held - 1, JSON.stringify(rescued));
    assert.ok(await exists(metaPath(s.metaDir, keyOf(b1))));
    assert.equal(await exists(metaPath(s.metaDir, keyOf(a2))), false, 'a2 was never written');
    // The server restarts: b1's next turn is restored from that file, its reply not prefilled again.
    await s.sim.restart();
    await new Promise((resolve) => setTimeout(resolve, RECHECK_AFTER_QUIET_MS + 100));
    const back = await chat(s, continued(b1, other.content, 4305));
    assert.equal(back.line.decision, 'restore', JSON.stringify(back.line));
    assert.ok(back.timings.cache_n >= b1Held, JSON.stringify(back.timings));
  });

  it('on a clearing server, a resident turn is checked only once a task sent just before it without a pin runs: that launch clears its slot', async () => {
    const tapped = stacks.keep(await startClearingServer({ realTime: false }));
    const { stack: s, tap } = tapped;
    const x1 = opening(4401);
    // x1's task ends on the server, but the proxy reads that end only after y's launch has begun: x1 is still
    // running for y's launch, which therefore does not count x1's slot as cleared.
    const x1Answer = tap.holdAnswer(
      (r) => r.path === '/v1/chat/completions' && r.body?.messages?.[0]?.content === x1[0]!.content,
    );
    const firstDone = chat(s, x1);
    await x1Answer.arrived;
    // y, a cold turn, is sent without a pin but held on its way to the server: its launch has not happened yet.
    const y = opening(4402);
    const yHeld = tap.hold(
      (r) => r.path === '/v1/chat/completions' && r.body?.messages?.[0]?.content === y[0]!.content,
    );
    const yDone = chat(s, y);
    await yHeld.arrived;
    x1Answer.release();
    const first = await firstDone;
    // x2 continues x1, resident on its slot, which y's launch will clear.
    const x2 = continued(x1, first.content, 4403);
    const x2Held = tap.hold(
      (r) => r.path === '/v1/chat/completions' && r.body?.messages?.at(-1)?.content === x2.at(-1)!.content,
    );
    const x2Done = chat(s, x2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    yHeld.release();
    await yDone;
    x2Held.release();
    const x2Result = await x2Done;
    // Checked before y ran, x2 would have been pinned to the slot y's launch then cleared, and prefilled everything.
    assert.notEqual(x2Result.line.decision, 'resident', JSON.stringify(x2Result.line));
    assert.ok(
      x2Result.timings.cache_n >= first.timings.cache_n + first.timings.prompt_n,
      JSON.stringify(x2Result.timings),
    );
  });
});
