/** Small helpers over the simulator's event log and cost model, shared by the integration tests. */
import type { CostModel, SimEvent, SimHandle } from '../../src/sim/index.js';

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
