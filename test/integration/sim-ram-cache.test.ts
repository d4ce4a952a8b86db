/**
 * The server's own RAM prompt cache (probe_cacheram_fa_off.txt): a state evicted from a slot comes back from RAM
 * for a later prompt, even after `erase`; it is lost on restart; idle slots move to RAM and, with a unified KV
 * buffer, vanish from their slot.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startSimulator, type SimOptions } from '../../src/sim/index.js';
import { chatBody, postJson } from '../../src/sim/sim-client.js';

const A = 'Line love us figure early snow warm center problem ago carry they warm night certain. '.repeat(30);
const B = 'What record my like build life nothing think head idea many enough say was lay year. '.repeat(30);

async function withSim(options: Partial<SimOptions>, body: (url: string, sim: Awaited<ReturnType<typeof startSimulator>>) => Promise<void>) {
  const sim = await startSimulator({ mode: 'llama-server', models: [{ id: 'm', nSlots: 4 }], cost: { timeScale: 0, kvBytesPerToken: 1000 }, ...options });
  try {
    await body(sim.url, sim);
  } finally {
    await sim.close();
  }
}

const chat = (url: string, content: string, extra: Record<string, unknown> = {}) =>
  postJson(url, '/v1/chat/completions', chatBody(content, { max_tokens: 2, ...extra })).then((r) => r.json().timings as { cache_n: number; prompt_n: number });

describe('sim RAM prompt cache', () => {
  it('brings back a state evicted from a pinned slot, even after erase, but not after a restart', async () => {
    await withSim({}, async (url, sim) => {
      const a1 = await chat(url, A, { id_slot: 0 });
      assert.equal(a1.cache_n, 0);
      const nA = a1.prompt_n;
      const b1 = await chat(url, B, { id_slot: 0 });
      assert.ok(b1.cache_n < 10, `B reused ${b1.cache_n} tokens of A`);
      const a2 = await chat(url, A, { id_slot: 0 });
      assert.equal(a2.cache_n, nA - 1);
      assert.ok(sim.events.some((e) => e.type === 'ram_hit'));
      const ramChat = sim.events.filter((e) => e.type === 'chat').at(-1)!;
      assert.ok(ramChat.type === 'chat' && ramChat.ram_hit);

      for (let i = 0; i < 4; i++) await postJson(url, `/slots/${i}?action=erase`, {});
      const a3 = await chat(url, A);
      assert.equal(a3.cache_n, nA - 1);

      await sim.restart();
      const a4 = await chat(url, A);
      assert.equal(a4.cache_n, 0);
    });
  });

  it('is off with cacheRamMiB 0', async () => {
    await withSim({ cacheRamMiB: 0 }, async (url) => {
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 0 });
      assert.ok((await chat(url, A, { id_slot: 0 })).cache_n < 10);
    });
  });

  it('only holds what fits: a state larger than the budget is not kept', async () => {
    // 1 MiB at 1000 bytes per token holds ~1000 tokens; A is far larger with this cost.
    await withSim({ cacheRamMiB: 1, cost: { timeScale: 0, kvBytesPerToken: 100_000 } }, async (url) => {
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 0 });
      assert.ok((await chat(url, A, { id_slot: 0 })).cache_n < 10);
    });
  });

  it('moves idle slots to RAM on a new task and clears them when the KV buffer is unified', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-ram-'));
    try {
      await withSim({ models: [{ id: 'm' }], slotSavePath: dir }, async (url, sim) => {
        const a1 = await chat(url, A, { id_slot: 0 });
        await chat(url, B, { id_slot: 1 });
        assert.deepEqual(sim.slotTokens('m', 0), []);
        const saved = (await postJson(url, '/slots/0?action=save', { filename: 'gone.bin' })).json();
        assert.equal(saved.n_saved, 0);
        const a2 = await chat(url, A, { id_slot: 0 });
        assert.equal(a2.cache_n, a1.prompt_n - 1);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps idle slots in place when the KV buffer is not unified', async () => {
    await withSim({ kvUnified: false }, async (url, sim) => {
      await chat(url, A, { id_slot: 0 });
      await chat(url, B, { id_slot: 1 });
      assert.ok(sim.slotTokens('m', 0)!.length > 0);
    });
  });
});
