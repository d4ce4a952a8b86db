/**
 * One compute engine per simulated llama-server process, seen over HTTP in the model-time `timings` the server
 * reports: two concurrent prefills share the GPU (each batch takes the lower slot's prompt first), a save of a big slot stalls another slot's decoding for its
 * whole duration, concurrent decodes go in one batch. `engine: 'per-slot'` gives back the older model where
 * none of that happens. A small time scale makes the requests overlap on the wall clock; every assertion is on
 * model time, never on the wall clock.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { chatBody, postJson, sseData } from '../../src/sim/sim-client.js';
import { withDeadline } from '../support/deadline.js';
import { eventsOf } from '../support/sim-helpers.js';

// 0.25 ms per prompt token, 20 ms per decode step, 100 kB of KV per token saved at 2.5 ms per MB; wall = model / 10.
const COST = {
  timeScale: 0.1,
  prefillMsPerToken: 0.25,
  decodeMsPerToken: 20,
  kvBytesPerToken: 100_000,
  saveMsPerMB: 2.5,
  modelLoadMs: 0,
};

interface Timings {
  prompt_n: number;
  prompt_ms: number;
  predicted_n: number;
  predicted_ms: number;
}

/** A prompt of about `n` tokens (the fake tokenizer makes one token of each word), distinct per `tag`. */
const words = (tag: string, n: number): string => Array.from({ length: n }, (_, i) => `${tag}${i % 10}`).join(' ');

async function startEngineSim(engine: 'shared' | 'per-slot'): Promise<{ sim: SimHandle; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), `sim-engine-${engine}-`));
  const sim = await startSimulator({
    mode: 'llama-server',
    models: [{ id: 'm', nSlots: 2 }],
    slotSavePath: dir,
    cacheRamMiB: 0,
    engine,
    cost: COST,
  });
  return { sim, dir };
}

async function chat(sim: SimHandle, content: string, extra: Record<string, unknown>): Promise<Timings> {
  const res = await postJson(sim.url, '/v1/chat/completions', chatBody(content, extra), { timeoutMs: 20_000 });
  assert.equal(res.status, 200, res.body);
  return res.json().timings as Timings;
}

/** A streamed chat: `firstToken` resolves once the slot is visibly decoding, `timings` with the finish chunk. */
function streamingChat(sim: SimHandle, content: string, extra: Record<string, unknown>) {
  let seen!: () => void;
  const firstToken = new Promise<void>((resolve) => (seen = resolve));
  const timings = postJson(sim.url, '/v1/chat/completions', chatBody(content, { stream: true, ...extra }), {
    timeoutMs: 20_000,
    onChunk: (c) => {
      if (c.includes('"content":" ')) seen();
    },
  }).then((res) => {
    const finish = sseData(res.body)
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d) as { timings?: Timings })
      .find((c) => c.timings);
    assert.ok(finish?.timings, res.body);
    return finish.timings;
  });
  return { firstToken: withDeadline(firstToken, 10_000, 'the first streamed token'), timings };
}

/** One long prefill alone, then two of the same length at once on the two slots. */
async function prefills(sim: SimHandle): Promise<{ alone: Timings; pair: Timings[] }> {
  const alone = await chat(sim, words('solo', 8000), { id_slot: 0, max_tokens: 1 });
  const pair = await Promise.all([
    chat(sim, words('left', 8000), { id_slot: 0, max_tokens: 1 }),
    chat(sim, words('right', 8000), { id_slot: 1, max_tokens: 1 }),
  ]);
  return { alone, pair };
}

/** Slot 0 decodes 200 tokens; once it streams, slot 1 (holding ~4000 tokens, a 1 s save) is saved. */
async function saveWhileDecoding(sim: SimHandle): Promise<{ decode: Timings; saveMs: number; written: number }> {
  await chat(sim, words('big', 4000), { id_slot: 1, max_tokens: 1 });
  const decoding = streamingChat(sim, 'tell me a long story', { id_slot: 0, max_tokens: 200 });
  await decoding.firstToken;
  const save = await postJson(sim.url, '/slots/1?action=save', { filename: 'big.bin' }, { timeoutMs: 20_000 });
  assert.equal(save.status, 200, save.body);
  const { n_written: written, timings } = save.json() as { n_written: number; timings: { save_ms: number } };
  return { decode: await decoding.timings, saveMs: timings.save_ms, written };
}

/** Slot 0 decodes 200 tokens; once it streams, slot 1 answers a short question with 20. */
async function decodesTogether(sim: SimHandle): Promise<{ long: Timings; short: Timings; shortEndedFirst: boolean }> {
  const mark = sim.events.length;
  const long = streamingChat(sim, 'keep talking for a while', { id_slot: 0, max_tokens: 200 });
  await long.firstToken;
  const short = await chat(sim, 'a short question', { id_slot: 1, max_tokens: 20 });
  const longTimings = await long.timings;
  const order = eventsOf(sim, 'chat', mark).map((e) => e.slot);
  return { long: longTimings, short, shortEndedFirst: order[0] === 1 && order[1] === 0 };
}

const saveMsOf = (bytes: number): number => Math.round((bytes / 1e6) * COST.saveMsPerMB * 1000) / 1000;

describe('sim compute engine: shared (default)', () => {
  let sim: SimHandle;
  let dir: string;
  before(async () => ({ sim, dir } = await startEngineSim('shared')));
  after(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("two concurrent long prefills: the lower slot's prompt takes each batch first, the other waits for it", async () => {
    const { alone, pair } = await prefills(sim);
    assert.equal(alone.prompt_ms, alone.prompt_n * COST.prefillMsPerToken, 'alone: the full modelled speed');
    const [low, high] = pair.map((t) => t.prompt_ms / alone.prompt_ms);
    const said = `prompt_ms ${pair.map((t) => t.prompt_ms).join(', ')} vs ${alone.prompt_ms} alone`;
    assert.ok(low! < 1.3, `slot 0 about as fast as alone: ${said}`);
    assert.ok(high! > 1.7 && high! < 2.2, `slot 1 after slot 0, about the time of both: ${said}`);
  });

  it("a save of a big slot stalls another slot's decoding for the save's duration; save_ms is the transfer alone", async () => {
    const { decode, saveMs, written } = await saveWhileDecoding(sim);
    assert.equal(saveMs, saveMsOf(written), 'save_ms does not include waiting for the engine');
    assert.ok(saveMs > 900, `a big save (${saveMs} ms)`);
    const alone = decode.predicted_n * COST.decodeMsPerToken;
    assert.ok(
      Math.abs(decode.predicted_ms - (alone + saveMs)) < 1,
      `predicted_ms ${decode.predicted_ms}, alone ${alone}, save ${saveMs}`,
    );
  });

  it('concurrent decodes share one batch per step and barely slow each other', async () => {
    const { long, short, shortEndedFirst } = await decodesTogether(sim);
    assert.ok(shortEndedFirst, 'the short chat decoded while the long one did');
    assert.equal(short.predicted_ms, short.predicted_n * COST.decodeMsPerToken);
    const alone = long.predicted_n * COST.decodeMsPerToken;
    // The long one waited only for the short one's small prompt chunk.
    assert.ok(
      long.predicted_ms >= alone && long.predicted_ms < alone * 1.05,
      `predicted_ms ${long.predicted_ms} vs ${alone} alone`,
    );
  });
});

describe('sim compute engine: per-slot (the older model)', () => {
  let sim: SimHandle;
  let dir: string;
  before(async () => ({ sim, dir } = await startEngineSim('per-slot')));
  after(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('prefills in parallel at the full speed each', async () => {
    const { alone, pair } = await prefills(sim);
    for (const t of [alone, ...pair]) assert.equal(t.prompt_ms, t.prompt_n * COST.prefillMsPerToken);
  });

  it('saves without holding up the other slots', async () => {
    const { decode, saveMs, written } = await saveWhileDecoding(sim);
    assert.equal(saveMs, saveMsOf(written));
    assert.equal(decode.predicted_ms, decode.predicted_n * COST.decodeMsPerToken);
  });

  it('decodes every slot at the full speed', async () => {
    const { long, short, shortEndedFirst } = await decodesTogether(sim);
    assert.ok(shortEndedFirst);
    assert.equal(long.predicted_ms, long.predicted_n * COST.decodeMsPerToken);
    assert.equal(short.predicted_ms, short.predicted_n * COST.decodeMsPerToken);
  });
});
