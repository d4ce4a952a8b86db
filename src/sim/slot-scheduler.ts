/**
 * Which slot a chat task runs on, as llama-server decides it: a pinned `id_slot` (wrapping modulo the slot
 * count), else the idle slot whose tokens cover the largest fraction of the prompt above
 * `--slot-prompt-similarity`, else the least recently used idle slot. When every slot is busy an unpinned task
 * waits (FIFO) for the first slot that goes idle.
 */
import { AbortedError } from './cost-model.js';
import type { Slot } from './slot.js';
import { commonPrefixLength } from './tokenizer.js';

/** How a slot was chosen; a slot chosen by LRU always has its old state offered to the RAM cache. */
export type SlotChoice = 'pinned' | 'similarity' | 'lru';

/** A job run on the chosen slot. */
export type SlotJob<T> = (slot: Slot, how: SlotChoice) => Promise<T>;

interface Waiter {
  prompt: readonly string[];
  start(slot: Slot, how: SlotChoice): void;
}

/** Maps a requested slot id to a slot index: ids wrap, negative ids count from the end (-1 = last). */
export function wrapSlotId(id: number, nSlots: number): number {
  return ((id % nSlots) + nSlots) % nSlots;
}

/** Picks slots for tasks of one model instance. */
export class SlotScheduler {
  private readonly waiters: Waiter[] = [];

  /**
   * @param slots the instance's slots (their onIdle must call `wake`)
   * @param similarity `--slot-prompt-similarity` (default 0.10; 0 disables the similarity pass)
   */
  constructor(
    private readonly slots: readonly Slot[],
    private readonly similarity: number,
  ) {}

  /** Runs `job` on the slot llama-server would pick; a pinned job queues behind that slot's work. */
  run<T>(pinned: number | undefined, prompt: readonly string[], job: SlotJob<T>, signal?: AbortSignal): Promise<T> {
    if (pinned !== undefined) {
      const slot = this.slots[wrapSlotId(pinned, this.slots.length)]!;
      return slot.run(() => job(slot, 'pinned'));
    }
    const choice = this.choose(prompt);
    if (choice) return choice.slot.run(() => job(choice.slot, choice.how));
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        prompt,
        start: (slot, how) => {
          signal?.removeEventListener('abort', onAbort);
          slot.run(() => job(slot, how)).then(resolve, reject);
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new AbortedError());
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Serves waiting unpinned tasks now that a slot went idle. */
  wake(): void {
    while (this.waiters.length > 0) {
      const choice = this.choose(this.waiters[0]!.prompt);
      if (!choice) return;
      this.waiters.shift()!.start(choice.slot, choice.how);
    }
  }

  /** Number of unpinned tasks waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  private choose(prompt: readonly string[]): { slot: Slot; how: SlotChoice } | undefined {
    const idle = this.slots.filter((s) => s.idle);
    if (idle.length === 0) return undefined;
    if (this.similarity > 0 && prompt.length > 0) {
      let best: Slot | undefined;
      let bestSim = 0;
      for (const s of idle) {
        if (s.tokens.length === 0) continue;
        const sim = commonPrefixLength(s.tokens, prompt) / prompt.length;
        if (sim > bestSim && sim > this.similarity) {
          best = s;
          bestSim = sim;
        }
      }
      if (best) return { slot: best, how: 'similarity' };
    }
    // `<=` like the real server: among equally old slots the last one wins (a fresh server starts at the top).
    let lru = idle[0]!;
    for (const s of idle) if (s.lastUsed <= lru.lastUsed) lru = s;
    return { slot: lru, how: 'lru' };
  }
}
