/**
 * A slot serves one task at a time (probe_busy.txt): slot actions on a busy slot are deferred until its task
 * ends, pinned chats queue, unpinned chats wait for a free slot, and a client that goes away mid-generation
 * stops the generation at once with the slot keeping what was processed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import type { CostModel } from '../../src/sim/cost-model.js';
import { chatBody, postJson, request } from '../../src/sim/sim-client.js';
import { words } from '../support/text.js';

/** A two-slot llama-server simulator with no RAM cache, started before the suite's tests and closed after them. */
function twoSlotSim(cost: Partial<CostModel>): { sim: SimHandle } {
  const at = {} as { sim: SimHandle };
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-busy-'));
    at.sim = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'm', nSlots: 2 }],
      slotSavePath: dir,
      cacheRamMiB: 0,
      cost: { timeScale: 1, modelLoadMs: 0, ...cost },
    });
  });
  after(async () => {
    await at.sim.close();
    await rm(dir, { recursive: true, force: true });
  });
  return at;
}

describe('sim busy slots', () => {
  // 10 ms per generated token on the wall clock, everything else instant.
  const at = twoSlotSim({ decodeMsPerToken: 10, prefillMsPerToken: 0, saveMsPerMB: 0, restoreMsPerMB: 0 });

  /** Starts a streamed chat and resolves `firstToken` once the slot is visibly decoding. */
  function streamingChat(content: string, extra: Record<string, unknown>) {
    let seen!: () => void;
    const firstToken = new Promise<void>((resolve) => (seen = resolve));
    const done = postJson(at.sim.url, '/v1/chat/completions', chatBody(content, { stream: true, ...extra }), {
      onChunk: (c) => {
        if (c.includes('"content":" ')) seen();
      },
    }).then((r) => ({ res: r }));
    return { firstToken, done };
  }

  it('defers a save on a busy slot until its task ends, and saves the state after it', async () => {
    const chat = streamingChat('a long answer please', { max_tokens: 20, id_slot: 0 });
    await chat.firstToken;
    const slots = (await request(at.sim.url, '/slots')).json();
    assert.equal(slots[0].is_processing, true);
    const save = await postJson(at.sim.url, '/slots/0?action=save', { filename: 'busy.bin' });
    const { res } = await chat.done;
    const chatIdx = at.sim.events.findIndex((e) => e.type === 'chat' && e.slot === 0);
    const saveIdx = at.sim.events.findIndex((e) => e.type === 'save' && e.filename === 'busy.bin');
    assert.ok(chatIdx >= 0 && chatIdx < saveIdx, 'the save ran before the chat ended');
    const usage = JSON.parse(res.body.split('\n\n').at(-3)!.slice(6)).timings;
    assert.equal(save.json().n_saved, usage.cache_n + usage.prompt_n + 20 - 1);
  });

  it('defers a restore on a busy slot; it then overwrites what the chat left', async () => {
    await postJson(at.sim.url, '/v1/chat/completions', chatBody('short', { max_tokens: 1, id_slot: 1 }));
    await postJson(at.sim.url, '/slots/1?action=save', { filename: 'short.bin' });
    const chat = streamingChat('another long answer', { max_tokens: 15, id_slot: 1 });
    await chat.firstToken;
    const restore = await postJson(at.sim.url, '/slots/1?action=restore', { filename: 'short.bin' });
    await chat.done;
    assert.equal(restore.status, 200);
    assert.equal(at.sim.slotTokens('m', 1)!.length, restore.json().n_restored);
  });

  it('does not wait for other slots: an action on an idle slot answers while another decodes', async () => {
    const chat = streamingChat('keep slot zero busy', { max_tokens: 30, id_slot: 0 });
    await chat.firstToken;
    const erase = await postJson(at.sim.url, '/slots/1?action=erase', {});
    assert.equal(erase.status, 200);
    const slots = (await request(at.sim.url, '/slots')).json();
    assert.equal(slots[0].is_processing, true, 'the erase had to wait for slot 0');
    await chat.done;
  });

  it('queues unpinned chats when every slot is busy', async () => {
    const a = streamingChat('busy one', { max_tokens: 10, id_slot: 0 });
    const b = streamingChat('busy two', { max_tokens: 10, id_slot: 1 });
    await Promise.all([a.firstToken, b.firstToken]);
    const before = at.sim.events.length;
    const third = await postJson(at.sim.url, '/v1/chat/completions', chatBody('any slot', { max_tokens: 1 }));
    await Promise.all([a.done, b.done]);
    assert.equal(third.status, 200);
    const later = at.sim.events.slice(before).filter((e) => e.type === 'chat');
    assert.equal(later.length, 3);
    const thirdEvent = later.find((e) => e.type === 'chat' && e.predicted_n === 1);
    assert.notEqual(later.indexOf(thirdEvent!), 0, 'the unpinned chat ran while both slots were busy');
  });

  it('stops generating when the client goes away; the slot keeps what was processed', async () => {
    const ac = new AbortController();
    let tokens = 0;
    const aborted = postJson(
      at.sim.url,
      '/v1/chat/completions',
      chatBody('abort me', { stream: true, max_tokens: 200, id_slot: 0 }),
      {
        signal: ac.signal,
        onChunk: (c) => {
          tokens += (c.match(/"content":" /g) ?? []).length;
          if (tokens >= 3) ac.abort();
        },
      },
    );
    await assert.rejects(aborted);
    // A pinned request runs only after the aborted task has ended on that slot.
    const next = (
      await postJson(at.sim.url, '/v1/chat/completions', chatBody('abort me', { max_tokens: 1, id_slot: 0 }))
    ).json();
    const ev = at.sim.events.find((e) => e.type === 'chat_aborted');
    assert.ok(ev && ev.type === 'chat_aborted');
    assert.equal(ev.aborted, true);
    assert.ok(ev.predicted_n >= 3 && ev.predicted_n < 50, `generated ${ev.predicted_n} tokens`);
    assert.equal(next.timings.cache_n, next.usage.prompt_tokens - 1);
  });
});

describe('sim /slots during a prefill', () => {
  // 0.2 ms per prompt token on the wall clock: a 3000-token prefill takes about 600 ms.
  const at = twoSlotSim({ prefillMsPerToken: 0.2, decodeMsPerToken: 1 });

  it("shows a cold task's first prompt batch (n_batch 2048) in its slot right after the launch, as llama-server does", async () => {
    const chat = postJson(at.sim.url, '/v1/chat/completions', chatBody(words(3000, 4201), { max_tokens: 2 }));
    let firstSight: { n_prompt_tokens: number; n_decoded: number } | undefined;
    const deadline = Date.now() + 5000;
    while (!firstSight && Date.now() < deadline) {
      const slots = (await request(at.sim.url, '/slots')).json() as Array<{
        is_processing: boolean;
        n_prompt_tokens?: number;
        next_token?: Array<{ n_decoded: number }>;
      }>;
      const running = slots.find((s) => s.is_processing);
      if (running)
        firstSight = { n_prompt_tokens: running.n_prompt_tokens!, n_decoded: running.next_token![0]!.n_decoded };
      else await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const usage = (await chat).json().timings as { prompt_n: number };
    assert.ok(firstSight, 'the task showed on its slot');
    assert.equal(firstSight.n_decoded, 0, 'seen during its prefill');
    assert.ok(usage.prompt_n > 2048, JSON.stringify(usage));
    assert.ok(
      firstSight.n_prompt_tokens >= 2048 && firstSight.n_prompt_tokens <= usage.prompt_n,
      JSON.stringify(firstSight),
    );
  });
});
