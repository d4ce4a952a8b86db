/**
 * Write-behind saves (smart policy): a conversation's new state is written to disk right after its answer, in the
 * backend's idle time, so that no request later waits for that write (an eviction finds it on disk already) and a
 * crash, restart or unload loses at most the last `windowMs` of answers.
 *
 * After an answer the slot is armed. The save starts at the first moment, `settleMs` after the answer or later,
 * when the backend has had no request of ours running or waiting for QUIET_MS (an agent continuing at once skips the
 * save: its next answer supersedes it). At `windowMs` after the answer it starts whatever the backend is doing, which
 * bounds the loss. In the idle time nobody waits for the save, so only the SAVE_MIN_NEW_TOKENS floor lets content
 * go; at the window's end (the backend may be busy) and before a clearing task start (a request waits) the
 * eviction's rule applies, re-save economics included. A request for the slot arriving during a save waits for that
 * one save (see the planner's own-slot wait).
 */
import type { Logger } from 'pino';
import type { CacheOpResult, SlotCache } from './slot-cache.js';
import type { SlotPool } from './slot-pool.js';
import type { SlotContent, SlotState } from './slot-state.js';
import { shortKey } from '../cache/meta-file.js';

export interface WriteBehindDeps {
  pool: SlotPool;
  slotCache: SlotCache;
  log: Logger;
  /** The loss window: the latest state is on disk this long after the answer at the latest; 0 = no write-behind. */
  windowMs: number;
  /**
   * The content that would be lost if the slot were overwritten now and is worth a save, if any. `busy`: the save
   * would delay someone (a request waits for it, or it shares the server with running requests), so the re-save
   * economics apply; in the backend's idle time only the SAVE_MIN_NEW_TOKENS floor does, as nobody waits.
   */
  unsaved: (slot: SlotState, busy: boolean) => SlotContent | undefined;
  describeBackend: (backend: number) => string;
}

/** What the generation flow tells the saver of answers' states (SavePolicy.createAnswerSaver). */
export interface AnswerSaver {
  /** A request released the slot: its new content may need saving. */
  slotReleased(slot: SlotState): void;
  /**
   * Before a completion task starts on a backend that clears its idle slots: save what the slots not `running` now
   * alone hold, and resolve with the results.
   */
  saveBeforeClearing(
    backend: number,
    running: (slot: SlotState) => boolean,
    tried: Set<SlotContent>,
  ): Promise<CacheOpResult[]>;
  /** Cancel pending saves and wait for running ones. */
  close(): Promise<void>;
}

/** The `always` policy's: every answer was saved by its own request already. */
export const NO_ANSWER_SAVER: AnswerSaver = {
  slotReleased: () => undefined,
  saveBeforeClearing: () => Promise.resolve([]),
  close: () => Promise.resolve(),
};

/** How long a backend stays idle before an idle-time save starts there. */
const QUIET_MS = 50;

interface Armed {
  content: SlotContent;
  settled: boolean;
  timers: NodeJS.Timeout[];
}

export class WriteBehindSaver implements AnswerSaver {
  private readonly armed = new Map<SlotState, Armed>();
  private readonly running = new Map<SlotState, Promise<CacheOpResult | undefined>>();
  /** Backends whose quiet is being watched for an idle-time save (see saveSettled). */
  private readonly looking = new Set<number>();
  private closed = false;
  private readonly settleMs: number;

  constructor(private readonly deps: WriteBehindDeps) {
    // Long enough for an agent's immediate next turn to come first, short against the window.
    this.settleMs = Math.min(deps.windowMs / 4, 250);
  }

  /** A request released the slot: arm its new content, and use the idle moment for what is settled already. */
  slotReleased(slot: SlotState): void {
    this.disarm(slot);
    this.arm(slot);
    this.saveSettled(slot.backend);
  }

  /**
   * Before a completion task starts on a backend that clears its idle slots (see ServerBehaviour): wait for the
   * saves running there, then save the unsaved content of every slot whose task is not `running` now, since the
   * launch clears it. A slot held by a request still waiting at the launch gate is idle at the server: it is saved
   * in place (its owner waits), the others are taken as background work. Content in `tried` (an earlier round of
   * the same launch) is not tried again; what is tried now is added to it.
   */
  async saveBeforeClearing(
    backend: number,
    running: (slot: SlotState) => boolean,
    tried: Set<SlotContent>,
  ): Promise<CacheOpResult[]> {
    await Promise.allSettled(this.runningOn(backend));
    const saves: Array<Promise<CacheOpResult | undefined>> = [];
    for (const slot of this.deps.pool.all()) {
      if (slot.backend !== backend || running(slot)) continue;
      const content = this.deps.unsaved(slot, true);
      if (!content || tried.has(content)) continue;
      tried.add(content);
      // Reported on the launching request's log line (clearing_saves), not on a line of their own.
      saves.push(
        slot.busy ? this.deps.slotCache.save(slot, content) : this.save(slot, content, 'before_clearing', false),
      );
    }
    const results = await Promise.all(saves);
    return results.filter((r): r is CacheOpResult => r !== undefined);
  }

  /** Cancel pending saves and wait for running ones (shutdown saves what is left afterwards). */
  async close(): Promise<void> {
    this.closed = true;
    for (const slot of [...this.armed.keys()]) this.disarm(slot);
    await Promise.allSettled(this.running.values());
  }

  private arm(slot: SlotState): void {
    if (this.closed || this.deps.windowMs <= 0 || slot.busy) return;
    const content = this.deps.unsaved(slot, false);
    if (!content) return;
    const armed: Armed = { content, settled: false, timers: [] };
    const settle = setTimeout(() => {
      armed.settled = true;
      this.saveSettled(slot.backend);
    }, this.settleMs);
    const deadline = setTimeout(() => void this.saveArmed(slot, 'window'), this.deps.windowMs);
    for (const timer of [settle, deadline]) timer.unref();
    armed.timers.push(settle, deadline);
    this.armed.set(slot, armed);
  }

  private disarm(slot: SlotState): Armed | undefined {
    const armed = this.armed.get(slot);
    for (const timer of armed?.timers ?? []) clearTimeout(timer);
    this.armed.delete(slot);
    return armed;
  }

  /**
   * The backend has nothing of ours to do: save its settled slots, one at a time, once it has stayed so for QUIET_MS.
   * The moment between one request's end and a client's next request is no idle time: a save started there makes
   * that request wait for it, or go to another slot at a greater cost.
   */
  private saveSettled(backend: number, delayMs = QUIET_MS): void {
    if (this.closed || this.looking.has(backend)) return;
    this.looking.add(backend);
    setTimeout(() => {
      this.looking.delete(backend);
      const settled = this.settledOn(backend);
      if (!settled) return;
      // Busy: look again (until the window's end disarms what waits). Idle for less than QUIET_MS: wait the rest.
      if (!this.deps.pool.backendIdle(backend)) return this.saveSettled(backend);
      const quietFor = performance.now() - this.deps.pool.lastChangeOn(backend);
      if (quietFor < QUIET_MS) return this.saveSettled(backend, QUIET_MS - quietFor);
      // Nothing to save there after all (taken, cleared, saved meanwhile; now disarmed): on to the next one.
      void this.saveArmed(settled, 'idle').then((saved) => saved ?? this.saveSettled(backend));
    }, delayMs).unref();
  }

  private settledOn(backend: number): SlotState | undefined {
    for (const [slot, armed] of this.armed) if (slot.backend === backend && armed.settled) return slot;
    return undefined;
  }

  private saveArmed(slot: SlotState, why: 'idle' | 'window'): Promise<CacheOpResult | undefined> {
    const armed = this.disarm(slot);
    if (!armed) return Promise.resolve(undefined);
    // At the window's end the backend may be busy: the save then has to be worth its cost.
    if (why === 'window' && this.deps.unsaved(slot, true) !== armed.content) return Promise.resolve(undefined);
    return this.save(slot, armed.content, why);
  }

  private async save(
    slot: SlotState,
    content: SlotContent,
    why: string,
    logLine = true,
  ): Promise<CacheOpResult | undefined> {
    // Continued or taken meanwhile (its release re-armed it), or saved by someone else: nothing to do.
    if (this.closed || slot.content !== content || content.saved || !this.deps.pool.takeForBackground(slot))
      return undefined;
    this.disarm(slot);
    const work = this.deps.slotCache.save(slot, content);
    this.running.set(slot, work);
    try {
      const save = await work;
      if (logLine) {
        const where = { backend: this.deps.describeBackend(slot.backend), model: content.model, slot: slot.id };
        this.deps.log.info({ ...where, key: shortKey(content.key), why, save }, 'saved after answer');
      }
      return save;
    } finally {
      this.running.delete(slot);
      // Not a use of the slot: its place in the LRU order stays where the conversation left it.
      this.deps.pool.release(slot, { touch: false });
      this.saveSettled(slot.backend);
    }
  }

  private runningOn(backend: number): Array<Promise<unknown>> {
    return [...this.running].filter(([slot]) => slot.backend === backend).map(([, work]) => work);
  }
}
