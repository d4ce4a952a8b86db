/** Small helpers over the simulator's event log and cost model, shared by the integration tests. */
import assert from 'node:assert/strict';
import { startSimulator } from '../../src/sim/index.js';
import type { CostModel, SimEvent, SimHandle, SimOptions } from '../../src/sim/index.js';
import { chatBody, postJson } from '../../src/sim/sim-client.js';

/**
 * A cost model where only decoding takes wall time (`decodeMs` per generated token), so `max_tokens` sets how
 * long a request holds its slot; prefill, save, restore and model loads are instant.
 */
export function decodeOnlyCost(decodeMs: number): Partial<CostModel> {
  return {
    timeScale: 1,
    prefillMsPerToken: 0,
    decodeMsPerToken: decodeMs,
    saveMsPerMB: 0,
    restoreMsPerMB: 0,
    ramLoadMsPerMB: 0,
    modelLoadMs: 0,
    kvBytesPerToken: 1000,
  };
}

/** The member(s) of the event union whose `type` can be T (ChatEvent covers both 'chat' and 'chat_aborted'). */
type EventOf<T extends SimEvent['type']> = SimEvent extends infer E
  ? E extends { type: infer U }
    ? T extends U
      ? E & { type: T }
      : never
    : never
  : never;

/** The simulator's events of one type (optionally only those from index `from` on), typed. */
export function eventsOf<T extends SimEvent['type']>(sim: SimHandle, type: T, from = 0): Array<EventOf<T>> {
  return sim.events.slice(from).filter((e): e is EventOf<T> => e.type === type);
}

/** Index in `sim.events` of the first event matching `predicate` (−1 when none). */
export function eventIndex(sim: SimHandle, predicate: (e: SimEvent) => boolean): number {
  return sim.events.findIndex(predicate);
}

/**
 * A front of two models `a` and `b` that runs one at a time (`front`: llama-swap, or a router at `--models-max 1`):
 * a request for `b` while `a` streams an answer unloads `a` only once that answer has ended, whole.
 */
export async function assertSwapWaitsForRequestsInFlight(front: Pick<SimOptions, 'mode' | 'modelsMax'>): Promise<void> {
  const slow = await startSimulator({
    ...front,
    models: [{ id: 'a' }, { id: 'b' }],
    cost: { timeScale: 1, decodeMsPerToken: 10, prefillMsPerToken: 0, modelLoadMs: 0 },
  });
  try {
    let generating!: () => void;
    const firstToken = new Promise<void>((resolve) => (generating = resolve));
    const first = postJson(
      slow.url,
      '/v1/chat/completions',
      chatBody('long', { model: 'a', max_tokens: 20, stream: true }),
      {
        onChunk: (c) => c.includes('"content":" ') && generating(),
      },
    );
    await firstToken;
    await postJson(slow.url, '/v1/chat/completions', chatBody('x', { model: 'b', max_tokens: 1 }));
    const a = await first;
    assert.equal(a.status, 200);
    assert.match(a.body, /"predicted_n":20/);
    const order = slow.events.filter((e) => e.type !== 'fault').map((e) => `${e.type}:${e.model}`);
    assert.ok(order.indexOf('chat:a') < order.indexOf('unload:a'), order.join(' '));
  } finally {
    await slow.close();
  }
}
