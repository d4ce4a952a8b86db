/**
 * What the `agents` workload shows beyond prefill (issue 8, item 4): whether side requests (titles, memory
 * extraction, infill) pushed the agents' main conversations out of their slots. Read from the simulator's own event
 * log, so it is the same measure with and without the proxy: each request's chat event is found by its
 * (cache_n, prompt_n) pair, then the slots' histories are replayed in the order the backend ran them.
 */
import type { SimEvent } from '../src/sim/index.js';
import type { RequestResult } from './driver.js';
import { idealPrefill } from './metrics.js';
import type { Workload } from './workloads.js';

export interface AgentMetrics {
  /** What the main conversations prefilled, and the least they could have (each turn only its new tokens). */
  main_prefill_tokens: number;
  ideal_main_prefill_tokens: number;
  /** Main turns (after an agent's first) that did not find their conversation in the slot it was left in. */
  main_turns_displaced: number;
  /** Of those, the ones whose slot was first taken over by a side request. */
  displaced_by_side: number;
  /** Side requests that ran on a slot holding a main conversation with turns still to come. */
  side_evictions: number;
  /** Requests whose backend event could not be told apart from another one's (same counts): left out above. */
  unmatched: number;
}

export function agentMetrics(
  workload: Workload,
  results: readonly RequestResult[],
  events: readonly SimEvent[],
): AgentMetrics {
  const ideal = idealPrefill(workload, results);
  let main = 0;
  for (const r of results) if (r.job.kind === 'turn') main += r.promptN;

  // Each request's chat event: same counts, not yet taken; a pair that several requests share is not attributed.
  const chats = events.flatMap((e, at) =>
    e.type === 'chat' ? [{ at, slot: e.slot, pair: `${e.cache_n}/${e.prompt_n}` }] : [],
  );
  const pairCount = new Map<string, number>();
  for (const r of results)
    pairCount.set(`${r.cacheN}/${r.promptN}`, (pairCount.get(`${r.cacheN}/${r.promptN}`) ?? 0) + 1);
  const byPair = new Map<string, typeof chats>();
  for (const c of chats) byPair.set(c.pair, [...(byPair.get(c.pair) ?? []), c]);
  const runs: Array<{ at: number; slot: number; job: number }> = [];
  let unmatched = 0;
  results.forEach((r, job) => {
    const pair = `${r.cacheN}/${r.promptN}`;
    const found = byPair.get(pair);
    if (pairCount.get(pair) !== 1 || found?.length !== 1) {
      unmatched++;
      return;
    }
    runs.push({ at: found[0]!.at, slot: found[0]!.slot, job });
  });
  runs.sort((a, b) => a.at - b.at);

  const jobs = workload.jobs;
  const lastTurnOf = new Map<string, number>();
  for (const j of jobs)
    if (j.kind === 'turn') lastTurnOf.set(j.conversation, Math.max(lastTurnOf.get(j.conversation) ?? 0, j.turn));
  const occupant = new Map<number, number>();
  const history = new Map<number, number[]>();
  const lastRun = new Map<string, { slot: number; job: number }>();
  let displaced = 0;
  let displacedBySide = 0;
  let sideEvictions = 0;
  for (const run of runs) {
    const job = jobs[run.job]!;
    const before = occupant.get(run.slot);
    const held = before === undefined ? undefined : jobs[before]!;
    if (job.kind === 'small' && held?.kind === 'turn' && held.turn < lastTurnOf.get(held.conversation)!)
      sideEvictions++;
    if (job.kind === 'turn') {
      const previous = lastRun.get(job.conversation);
      if (previous && occupant.get(previous.slot) !== previous.job) {
        displaced++;
        const slotRuns = history.get(previous.slot)!;
        const taker = slotRuns[slotRuns.indexOf(previous.job) + 1];
        if (taker !== undefined && jobs[taker]!.kind === 'small') displacedBySide++;
      }
      lastRun.set(job.conversation, { slot: run.slot, job: run.job });
    }
    occupant.set(run.slot, run.job);
    history.set(run.slot, [...(history.get(run.slot) ?? []), run.job]);
  }
  return {
    main_prefill_tokens: main,
    ideal_main_prefill_tokens: ideal.conversations,
    main_turns_displaced: displaced,
    displaced_by_side: displacedBySide,
    side_evictions: sideEvictions,
    unmatched,
  };
}
