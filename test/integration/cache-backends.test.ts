/**
 * Several backends (BACKENDS), each llama-server with its own --slot-save-path: a meta names the backend whose
 * disk holds the file, restores go only there, and big requests run on both backends at once.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle } from '../../src/sim/index.js';
import {
  chat,
  chatEvents,
  continued,
  exists,
  keyOf,
  MODEL,
  opening,
  readMeta,
  slotFileEvents,
} from '../support/cache.js';
import type { Message } from '../support/cache.js';
import { eventually, withDeadline } from '../support/deadline.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { startTap } from '../support/tap.js';
import type { Tap } from '../support/tap.js';

interface TwoBackends {
  stack: Stack;
  sims: [SimHandle, SimHandle];
  dirs: [string, string];
  /** The URLs the proxy was given (the taps' when taps are on). */
  urls: [string, string];
  taps: Tap[];
  close(): Promise<void>;
}

/** The usual stack (backend 0, one slot) plus a second simulator with its own save dir; the proxy gets both. */
async function startTwoBackends(opts: { taps?: boolean } = {}): Promise<TwoBackends> {
  const stack = await startStack({ sim: { models: [{ id: MODEL, nSlots: 1 }] } });
  const dir2 = await mkdtemp(join(tmpdir(), 'proxycache-test-b2-'));
  const sim2 = await startSimulator({
    mode: 'llama-server',
    models: [{ id: MODEL, nSlots: 1 }],
    slotSavePath: dir2,
    cacheRamMiB: 0,
    cost: { timeScale: 0, kvBytesPerToken: 1000 },
  });
  const taps = opts.taps ? [await startTap(stack.sim.url), await startTap(sim2.url)] : [];
  const urls: [string, string] = opts.taps ? [taps[0]!.url, taps[1]!.url] : [stack.sim.url, sim2.url];
  await stack.restartProxy({ BACKENDS: JSON.stringify(urls.map((url) => ({ url, n_slots: 1 }))) });
  return {
    stack,
    sims: [stack.sim, sim2],
    dirs: [stack.cacheDir, dir2],
    urls,
    taps,
    async close() {
      await Promise.all(taps.map((t) => t.close()));
      await stack.close();
      await sim2.close();
      await rm(dir2, { recursive: true, force: true });
    },
  };
}

describe('several backends', { timeout: 60_000 }, () => {
  let two: TwoBackends | undefined;
  afterEach(async () => {
    await two?.close();
    two = undefined;
  });

  it('the meta records the backend whose disk holds the file, and a restore is tried only on that backend', async () => {
    two = await startTwoBackends();
    const { stack, sims, dirs, urls } = two;
    // A first conversation takes backend 0, so A lives on backend 1: a proxy that ignored the meta's backend
    // would look at backend 0 first and restore there.
    await chat(stack, opening(500));
    const a = opening(501);
    const first = await chat(stack, a);
    const home = 1;
    const away = 0;
    assert.equal(first.line.backend, urls[home], 'precondition: A is served by the second backend');
    assert.equal((await readMeta(stack.metaDir, keyOf(a))).backend, urls[home]);
    assert.ok(await exists(join(dirs[home], keyOf(a))));
    assert.equal(await exists(join(dirs[away], keyOf(a))), false);

    // Other conversations until A's slot was taken; the last one ran on A's backend, so the other backend's slot
    // is the least recently used: a proxy ignoring the meta's backend would restore there.
    const others: Array<{ messages: Message[]; backend: string }> = [];
    for (let seed = 510; sims[home].slotTokens(MODEL, 0)?.join('').includes(a[0]!.content.slice(0, 60)); seed++) {
      assert.ok(seed < 515, 'A could not be evicted');
      const messages = opening(seed);
      const res = await chat(stack, messages);
      others.push({ messages, backend: res.line.backend as string });
    }
    assert.equal(others.at(-1)!.backend, urls[home], 'precondition: the other backend is the LRU choice');
    const onAway = others.find((o) => o.backend === urls[away]);
    assert.ok(onAway, 'some conversation ran on the other backend');
    assert.equal((await readMeta(stack.metaDir, keyOf(onAway.messages))).backend, urls[away]);
    assert.ok(await exists(join(dirs[away], keyOf(onAway.messages))));
    const marks = sims.map((s) => s.events.length);

    const next = await chat(stack, continued(a, first.content, 502));

    const restores = slotFileEvents(sims[home], 'restore', marks[home]);
    assert.equal(restores.length, 1);
    assert.equal(restores[0]!.filename, keyOf(a));
    assert.equal(restores[0]!.ok, true);
    assert.deepEqual(slotFileEvents(sims[away], 'restore'), [], 'never tried where the file is not');
    assert.equal(next.line.backend, urls[home]);
    assert.equal(chatEvents(sims[home], marks[home]!).length, 1);
    assert.ok(next.timings.cache_n >= first.timings.prompt_n, `cache_n ${next.timings.cache_n}`);
  });

  it('two concurrent big requests run on both backends at once', async () => {
    two = await startTwoBackends({ taps: true });
    const { stack, sims, dirs, taps } = two;
    const holds = taps.map((t) => t.hold((r) => r.path === '/v1/chat/completions'));
    const a = opening(521);
    const b = opening(522);
    const mark = stack.logs.lines.length;

    const pending = [
      stack.openai.chat.completions.create({ model: MODEL, messages: a, max_tokens: 4 }),
      stack.openai.chat.completions.create({ model: MODEL, messages: b, max_tokens: 4, stream: true }),
    ];
    for (const p of pending) p.catch(() => undefined); // awaited below; no unhandled rejection if we fail first
    try {
      // Both chats are in flight upstream at the same time, one on each backend.
      await withDeadline(Promise.all(holds.map((h) => h.arrived)), 5000, 'a chat on each backend');
    } finally {
      for (const h of holds) h.release();
    }
    const [json, stream] = await withDeadline(Promise.all(pending), 5000, 'both answers');
    assert.equal((json as { choices: unknown[] }).choices.length, 1);
    let chunks = 0;
    for await (const _ of stream as AsyncIterable<unknown>) chunks++;
    assert.ok(chunks > 1);

    const lines = await eventually(
      () => {
        const chats = stack.logs.lines.slice(mark).filter((l) => l.msg === 'chat');
        return chats.length === 2 ? chats : undefined;
      },
      5000,
      "both requests' chat lines",
    );
    assert.deepEqual(
      lines.map((l) => (l.save as { ok?: boolean } | undefined)?.ok),
      [true, true],
    );
    assert.deepEqual(new Set(lines.map((l) => l.backend)), new Set(two.urls));
    assert.deepEqual(
      sims.map((s) => chatEvents(s).length),
      [1, 1],
    );
    const keys = [keyOf(a), keyOf(b)];
    const placed = await Promise.all(dirs.map(async (dir) => Promise.all(keys.map((k) => exists(join(dir, k))))));
    // Each conversation is saved on the disk of the backend that served it, and only there.
    assert.deepEqual(
      placed.map((p) => p.filter(Boolean).length),
      [1, 1],
    );
    assert.notDeepEqual(placed[0], placed[1]);
  });
});
