/**
 * Saves in the quiet moments (smart policy). Under slot pressure a slot's unsaved conversation is going to be
 * evicted, and the eviction save then delays the request that evicts it by the whole write (seconds for a long
 * context). When such a slot has stayed idle for IDLE_SAVE_SECONDS, it is saved in the background instead, so the
 * later eviction finds it on disk already. Without pressure nothing is saved: a slot that keeps its conversation
 * needs no file.
 *
 * Pressure is evidence, not a guess: a request on the same slots had to evict another conversation's big content
 * (or restore its own) within the last PRESSURE_WINDOW_MS.
 */
import type { Logger } from 'pino';
import type { SlotCache } from './slot-cache.js';
import type { SlotPool } from './slot-pool.js';
import type { SlotContent, SlotState } from './slot-state.js';

/** How long an eviction counts as evidence that the slots are contended. */
export const PRESSURE_WINDOW_MS = 30 * 60 * 1000;

export interface IdleSaverDeps {
  pool: SlotPool;
  slotCache: SlotCache;
  log: Logger;
  /** Idle time after which a slot's unsaved content is saved; 0 = never. */
  idleMs: number;
  /** The content that would be lost if the slot were overwritten now, if any (the policy's save rule). */
  unsaved: (slot: SlotState) => SlotContent | undefined;
  describeBackend: (backend: number) => string;
  now?: () => number;
}

export class IdleSaver {
  private readonly lastPressure = new Map<string, number>();
  private readonly timers = new Map<SlotState, NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly deps: IdleSaverDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * A request on this slot's group evicted another conversation's big content, or restored its own. The group's
   * idle slots released before that count from now.
   */
  notePressure(slot: SlotState): void {
    this.lastPressure.set(groupKey(slot), this.now());
    for (const other of this.deps.pool.group(slot.backend, slot.model)) {
      if (other !== slot && !this.timers.has(other)) this.schedule(other);
    }
  }

  /** The slot was released: if it holds content worth saving and its slots are contended, save it once idle. */
  slotReleased(slot: SlotState): void {
    this.cancel(slot);
    if (this.underPressure(slot)) this.schedule(slot);
  }

  private schedule(slot: SlotState): void {
    // Busy: taken again at once (a waiter), and its own release will come.
    if (this.closed || this.deps.idleMs <= 0 || slot.busy || slot.disabled) return;
    const content = this.deps.unsaved(slot);
    if (!content) return;
    const timer = setTimeout(() => {
      this.timers.delete(slot);
      this.saveIfStillIdle(slot, content);
    }, this.deps.idleMs);
    timer.unref();
    this.timers.set(slot, timer);
  }

  /** Stop scheduling, and wait for the saves already running (shutdown saves what is left afterwards). */
  async close(): Promise<void> {
    this.closed = true;
    for (const slot of [...this.timers.keys()]) this.cancel(slot);
    await Promise.allSettled([...this.running]);
  }

  private cancel(slot: SlotState): void {
    const timer = this.timers.get(slot);
    if (timer) clearTimeout(timer);
    this.timers.delete(slot);
  }

  private underPressure(slot: SlotState): boolean {
    const at = this.lastPressure.get(groupKey(slot));
    return at !== undefined && this.now() - at <= PRESSURE_WINDOW_MS;
  }

  private saveIfStillIdle(slot: SlotState, content: SlotContent): void {
    // Used again meanwhile (its release rescheduled it), taken, or saved by someone else: nothing to do.
    if (this.closed || slot.busy || this.deps.unsaved(slot) !== content) return;
    slot.busy = true;
    const work: Promise<void> = this.deps.slotCache
      .save(slot, content)
      .then((save) => {
        this.deps.log.info({
          backend: this.deps.describeBackend(slot.backend),
          model: content.model,
          slot: slot.id,
          key: content.key.slice(0, 16),
          idle_ms: this.deps.idleMs,
          save,
        }, 'saved idle slot');
      })
      .finally(() => {
        // Not a use of the slot: its place in the LRU order stays where the conversation left it.
        this.deps.pool.release(slot, { touch: false });
        this.running.delete(work);
      });
    this.running.add(work);
  }
}

function groupKey(slot: SlotState): string {
  return `${slot.backend}\u0000${slot.model}`;
}
