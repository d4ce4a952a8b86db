/**
 * Whether leaving answers to the server's RAM cache (RamRescues) pays on a backend, from what it has cost there.
 *
 * An answer left there costs nothing when its conversation takes it back within the loss window, and a rescue when it
 * does not: a replay into a slot and a save, while the slot (or, where the server clears idle slots, every launch)
 * waits. Not left, it costs one save, on the request that pushes it out. On the real CPU server with two clients
 * sending back to back a rescue held its slot 60 to 140 ms against a save's 8 to 20, and requests waiting behind the
 * rescues made the proxy's mean time to first token up to 1.3 × llama-server alone's, where saving instead measured
 * about 1.0. So leaving pays while (share of left answers rescued) × (a rescue's time) < (a save's time), both
 * measured on the rescues themselves. Until a few rescues have run it pays (the server alone keeps them there too).
 * Where it does not, one answer in EXPLORE_EVERY is left anyway, so that a change of workload is seen.
 */

/** Rescues needed before their cost is trusted. */
const MIN_RESCUES = 3;
/** Left answers counted before the counts are halved: the share follows the last few dozen. */
const HISTORY = 32;
/** Weight of a new rescue's times in their running means. */
const ALPHA = 0.25;
/** Where leaving does not pay, one answer in this many is left anyway. */
export const EXPLORE_EVERY = 8;

interface Costs {
  left: number;
  rescued: number;
  /** Running means of the rescues' times; undefined before the first. */
  rescueMs?: number;
  saveMs?: number;
  /** Answers not left since leaving stopped paying. */
  declined: number;
  /** The verdict the last decision saw (it pays at first). */
  paid: boolean;
}

/** What the decision saw, for the log and the status API. */
export interface RamTierVerdict {
  pays: boolean;
  left: number;
  rescued: number;
  rescueMs: number;
  saveMs: number;
}

export class RamTierPayoff {
  private readonly costs = new Map<number, Costs>();

  /** A big answer on `backend` was left to the RAM cache. */
  noteLeft(backend: number): void {
    const c = this.of(backend);
    c.left++;
    if (c.left >= 2 * HISTORY) {
      c.left /= 2;
      c.rescued /= 2;
    }
  }

  /** A rescue on `backend` ran: how long it held its slot or the launch gate, and how long its save of that took. */
  noteRescue(backend: number, rescueMs: number, saveMs: number): void {
    const c = this.of(backend);
    c.rescued++;
    c.rescueMs = runningMean(c.rescueMs, rescueMs);
    c.saveMs = runningMean(c.saveMs, saveMs);
  }

  /** Whether leaving answers pays on `backend` now (no side effect). */
  verdict(backend: number): RamTierVerdict {
    const c = this.of(backend);
    const share = c.left > 0 ? Math.min(1, c.rescued / c.left) : 0;
    const rescueMs = c.rescueMs ?? 0;
    const saveMs = c.saveMs ?? 0;
    const pays = c.rescued < MIN_RESCUES || share * rescueMs < saveMs;
    return { pays, left: c.left, rescued: c.rescued, rescueMs, saveMs };
  }

  /**
   * Decide for the next big answer on `backend`: leave it to the RAM cache when that pays, and one time in
   * EXPLORE_EVERY when it does not. `changed`: the verdict differs from the one the last decision saw.
   */
  leaveNext(backend: number): { leave: boolean; verdict: RamTierVerdict; changed: boolean } {
    const c = this.of(backend);
    const verdict = this.verdict(backend);
    const changed = verdict.pays !== c.paid;
    c.paid = verdict.pays;
    if (verdict.pays) c.declined = 0;
    const leave = verdict.pays || ++c.declined % EXPLORE_EVERY === 0;
    return { leave, verdict, changed };
  }

  private of(backend: number): Costs {
    let c = this.costs.get(backend);
    if (!c) {
      c = { left: 0, rescued: 0, declined: 0, paid: true };
      this.costs.set(backend, c);
    }
    return c;
  }
}

const runningMean = (mean: number | undefined, sample: number): number =>
  mean === undefined ? sample : mean + ALPHA * (sample - mean);
