/**
 * The server's own RAM prompt cache (--cache-ram, --cache-idle-slots), pinned to what the real llama-server does.
 * Every scenario below was run on the real binary (/work/shared/llama-server, commit 3f545bec, tiny-chat.gguf,
 * -fa off, default --cache-ram 8192) with the same three texts; the real token counts are quoted in comments (the
 * simulator's tokenizer gives other counts, so the assertions compare with "all but the last token" or 0).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startSimulator, type SimHandle, type SimOptions } from '../../src/sim/index.js';
import { chatBody, postJson, request } from '../../src/sim/sim-client.js';

const A = 'Line love us figure early snow warm center problem ago carry they warm night certain. '.repeat(30);
const B = 'What record my like build life nothing think head idea many enough say was lay year. '.repeat(30);
const C = 'Blue river stone quiet morning paper window garden music yellow bridge old town. '.repeat(30);

interface Timings {
  cache_n: number;
  prompt_n: number;
}

async function withSim(options: Partial<SimOptions>, body: (url: string, sim: SimHandle) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'sim-ram-'));
  const sim = await startSimulator({
    mode: 'llama-server',
    models: [{ id: 'm', nSlots: 2 }], // like -np 2: KV not unified
    slotSavePath: dir, // slot actions (erase included) answer 501 without it
    cost: { timeScale: 0, kvBytesPerToken: 1000 },
    ...options,
  });
  try {
    await body(sim.url, sim);
  } finally {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const chat = (url: string, content: string, extra: Record<string, unknown> = {}): Promise<Timings> =>
  postJson(url, '/v1/chat/completions', chatBody(content, { max_tokens: 2, ...extra })).then(
    (r) => r.json().timings as Timings,
  );
const total = (t: Timings): number => t.cache_n + t.prompt_n;
const action = (url: string, id: number, act: string, filename?: string) =>
  postJson(url, `/slots/${id}?action=${act}`, filename ? { filename } : {}).then((r) => ({
    status: r.status,
    body: r.json(),
  }));
/** `n_prompt_tokens` of each slot; undefined for the short form. */
const promptTokens = async (url: string): Promise<(number | undefined)[]> =>
  ((await request(url, '/slots')).json() as { n_prompt_tokens?: number }[]).map((s) => s.n_prompt_tokens);

describe('sim RAM prompt cache (measured on the real llama-server)', () => {
  it('a request pinned to an EMPTY slot skips the RAM cache; pinned to a slot holding another prompt it uses it', async () => {
    // Real, -np 2: A→0 (0/508), B→0 (10/538, A goes to RAM), A→1 empty: 0/508; erase 1, C→1, A→1: 507/508;
    // erase 0, B→0: 0/538 although B is in RAM (saved as an idle slot).
    await withSim({}, async (url) => {
      await chat(url, A, { id_slot: 0 });
      assert.ok((await chat(url, B, { id_slot: 0 })).cache_n < 20);
      assert.equal((await chat(url, A, { id_slot: 1 })).cache_n, 0);
      await action(url, 1, 'erase');
      await chat(url, C, { id_slot: 1 });
      const a = await chat(url, A, { id_slot: 1 });
      assert.equal(a.cache_n, total(a) - 1);
      await action(url, 0, 'erase');
      assert.equal((await chat(url, B, { id_slot: 0 })).cache_n, 0);
    });
  });

  it('an unpinned request picks a slot by LRU and loads its prompt from RAM; a loaded entry leaves the cache', async () => {
    // Real, -np 2: A→0, B→0, C→1, A→1 (507/508: A loaded from RAM), erase 1, erase 0; then unpinned
    // A: 0/508 (A left the RAM cache when it was loaded), B: 537/538, C: 447/448.
    await withSim({}, async (url, sim) => {
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 0 });
      await chat(url, C, { id_slot: 1 });
      const a = await chat(url, A, { id_slot: 1 });
      assert.equal(a.cache_n, total(a) - 1);
      const ramChat = sim.events.filter((e) => e.type === 'chat').at(-1)!;
      assert.ok(ramChat.type === 'chat' && ramChat.ram_hit);
      await action(url, 1, 'erase');
      await action(url, 0, 'erase');
      assert.equal((await chat(url, A)).cache_n, 0);
      const b = await chat(url, B);
      assert.equal(b.cache_n, total(b) - 1);
      const c = await chat(url, C);
      assert.equal(c.cache_n, total(c) - 1);
    });
  });

  it('does not look in RAM when the prompt keeps at least half of the slot (f_keep >= 0.5)', async () => {
    // Real, -np 2: A+B→0, B→0 (A+B to RAM), A→1 (empty: 0), then A+B+C→1: 490/1438, the slot's own prefix,
    // not the ~1010 tokens of the A+B entry in RAM.
    await withSim({}, async (url) => {
      const ab = await chat(url, A + B, { id_slot: 0 });
      await chat(url, B, { id_slot: 0 });
      const a = await chat(url, A, { id_slot: 1 });
      assert.equal(a.cache_n, 0);
      const abc = await chat(url, A + B + C, { id_slot: 1 });
      assert.ok(abc.cache_n > 0 && abc.cache_n < total(a), `reused ${abc.cache_n}`);
      assert.ok(abc.cache_n < total(ab) / 2);
    });
  });

  it('with --slot-prompt-similarity 0 a pinned request never uses the RAM cache', async () => {
    // Real, -np 2 -sps 0: A→0, B→0, C→1, A→1 (holding C): 10/508.
    await withSim({ slotPromptSimilarity: 0 }, async (url) => {
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 0 });
      await chat(url, C, { id_slot: 1 });
      assert.ok((await chat(url, A, { id_slot: 1 })).cache_n < 20);
    });
  });

  it('default configuration: idle slots are saved and cleared at each task launch, never the target slot', async () => {
    // Real, no -np, -c 8192: 4 slots of n_ctx 8192. A→0 (0/508); B→1: slot 0 now shows n_prompt_tokens 0 and saves
    // n_saved 0 (36 bytes); A→0 pinned to the cleared slot: 0/508; unpinned A instead: LRU slot 3, 507/508; B→1
    // again: 0/538 (slot 1 was cleared when A started).
    await withSim({ models: [{ id: 'm', nCtx: 8192 }] }, async (url) => {
      const slots = (await request(url, '/slots')).json() as { n_ctx: number }[];
      assert.deepEqual(
        slots.map((s) => s.n_ctx),
        [8192, 8192, 8192, 8192],
      );
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 1 });
      assert.deepEqual(
        (await promptTokens(url)).slice(0, 2).map((n) => (n ?? -1) > 0),
        [false, true],
      );
      assert.equal((await promptTokens(url))[0], 0);
      assert.equal((await action(url, 0, 'save', 'empty.bin')).body.n_saved, 0);
      const a = await chat(url, A);
      assert.equal(a.cache_n, total(a) - 1);
      assert.equal((await chat(url, B, { id_slot: 1 })).cache_n, 0);
      assert.equal((await chat(url, A, { id_slot: 0 })).cache_n, 0);
    });
  });

  it('default configuration: a restored slot survives its own launch and is cleared by another', async () => {
    // Real, no -np: save A from slot 0; restore into 2 (GET /slots: short form), A→2: 507/508; restore into 3,
    // C→1: slots 2 and 3 are cleared (2 shows 0, 3 stays in the short form) and slot 3 saves n_saved 0.
    await withSim({ models: [{ id: 'm' }] }, async (url) => {
      await chat(url, A, { id_slot: 0 });
      assert.equal((await action(url, 0, 'save', 'a.bin')).status, 200);
      await action(url, 2, 'restore', 'a.bin');
      assert.equal((await promptTokens(url))[2], undefined);
      const a = await chat(url, A, { id_slot: 2 });
      assert.equal(a.cache_n, total(a) - 1);
      await action(url, 3, 'restore', 'a.bin');
      await chat(url, C, { id_slot: 1 });
      const after = await promptTokens(url);
      assert.equal(after[2], 0);
      assert.equal(after[3], undefined);
      assert.equal((await action(url, 3, 'save', 's3.bin')).body.n_saved, 0);
    });
  });

  it('after a failed restore the emptied slot reuses nothing, even with the prompt in RAM', async () => {
    // Real, no -np: slot 2 holding A, restore of a missing file → 400 "Unable to restore slot…", GET /slots shows
    // n_prompt_tokens 0, then A→2: 0/508 (A was in RAM).
    await withSim({ models: [{ id: 'm' }] }, async (url) => {
      await chat(url, A, { id_slot: 2 });
      await chat(url, B, { id_slot: 1 }); // slot 2 (A) goes to RAM and is cleared
      await chat(url, A, { id_slot: 2 });
      const failed = await action(url, 2, 'restore', 'missing.bin');
      assert.equal(failed.status, 400);
      assert.match(failed.body.error.message, /^Unable to restore slot/);
      assert.equal((await promptTokens(url))[2], 0);
      assert.equal((await chat(url, A, { id_slot: 2 })).cache_n, 0);
    });
  });

  it('GET /slots: a slot filled only by a restore keeps the short form, even after erase', async () => {
    // Real: restore into a slot that never ran a task → no n_prompt_tokens; erase → still none; erase of a slot
    // that ran a task → n_prompt_tokens 0.
    await withSim({}, async (url) => {
      await chat(url, A, { id_slot: 0 });
      await action(url, 0, 'save', 'a.bin');
      await action(url, 1, 'restore', 'a.bin');
      assert.equal((await promptTokens(url))[1], undefined);
      await action(url, 1, 'erase');
      await action(url, 0, 'erase');
      assert.deepEqual(await promptTokens(url), [0, undefined]);
    });
  });

  it('is lost on restart, off with cacheRamMiB 0, and only holds what fits', async () => {
    await withSim({}, async (url, sim) => {
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 0 });
      await sim.restart();
      assert.equal((await chat(url, A)).cache_n, 0);
    });
    await withSim({ cacheRamMiB: 0 }, async (url) => {
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 0 });
      assert.ok((await chat(url, A, { id_slot: 0 })).cache_n < 20);
    });
    // 1 MiB at 100 KB per token holds ~10 tokens; A is far larger.
    await withSim({ cacheRamMiB: 1, cost: { timeScale: 0, kvBytesPerToken: 100_000 } }, async (url) => {
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 0 });
      assert.ok((await chat(url, A, { id_slot: 0 })).cache_n < 20);
    });
  });

  it('keeps idle slots in place when the KV buffer is not unified', async () => {
    await withSim({ kvUnified: false, models: [{ id: 'm' }] }, async (url, sim) => {
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 1 });
      assert.ok(sim.slotTokens('m', 0)!.length > 0);
    });
  });
});
