/**
 * Slot bookkeeping: the state of every (backend, model, slot), exclusive acquisition with a FIFO wait queue and a
 * deadline, and release. What to pick is decided by a plan function (see slot-planner.ts); this module only makes
 * sure a slot serves one request at a time and that waiters are woken when slots free up.
 *
 * The pool is the only writer of slot state: everyone else reads `SlotState` (its fields are readonly) and says
 * what changed through the named methods below (`fill`, `forget`, `markSaved`…).
 */
import { noSlotAvailable } from '../errors.js';
import { groupKey } from '../backend/group-key.js';
import type { SlotContent, SlotPlan, SlotState } from './slot-state.js';

type Writable<T> = { -readonly [K in keyof T]: T[K] };
/** The pool's own view of a slot: the same object, writable. */
const w = (slot: SlotState) => slot as Writable<SlotState>;

export interface PoolBackend {
  /** Slots the proxy may use on this backend (per model). */
  nSlots: number;
  /** True when every model name maps to the same slots (a plain llama-server). */
  sharedAcrossModels: () => boolean;
}

type PlanFn = (candidates: readonly SlotState[]) => SlotPlan | undefined;

interface Waiter {
  model: string;
  plan: PlanFn;
  resolve: (plan: SlotPlan) => void;
}

export class SlotPool {
  private readonly groups = new Map<string, SlotState[]>();
  private readonly waiters: Waiter[] = [];
  private tick = 0;
  /** When a slot of the backend was last taken or given back (performance.now()), by backend. */
  private readonly changedAt = new Map<number, number>();

  constructor(private readonly backends: readonly PoolBackend[]) {}

  /** Every slot that can serve `model`, across all backends (groups are created on first use). */
  candidates(model: string): SlotState[] {
    return this.backends.flatMap((_, index) => this.group(index, model));
  }

  /** The slots of one backend for `model`. */
  group(backend: number, model: string): SlotState[] {
    const groupModel = this.backends[backend]!.sharedAcrossModels() ? '' : model;
    const key = groupKey(backend, groupModel);
    let slots = this.groups.get(key);
    if (!slots) {
      slots = Array.from({ length: this.backends[backend]!.nSlots }, (_, id) => ({
        backend,
        model: groupModel,
        id,
        busy: false,
        disabled: false,
        lastUsed: 0,
      }));
      this.groups.set(key, slots);
    }
    return slots;
  }

  /** All slots known so far. */
  all(): SlotState[] {
    return [...this.groups.values()].flat();
  }

  /**
   * Acquire a slot chosen by `plan`, waiting (FIFO) while every candidate is busy. Rejects with a 503 ProxyError
   * after `timeoutMs`, or with the signal's reason when the client goes away while waiting.
   */
  acquire(model: string, plan: PlanFn, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<SlotPlan> {
    const immediate = this.waiters.length === 0 ? this.tryPlan(model, plan) : undefined;
    if (immediate) return Promise.resolve(immediate);
    return new Promise<SlotPlan>((resolve, reject) => {
      const waiter: Waiter = {
        model,
        plan,
        resolve: (p) => {
          cleanup();
          resolve(p);
        },
      };
      const timer = setTimeout(() => {
        cleanup();
        // Not rounded: ACQUIRE_TIMEOUT=0.2 must not read "busy for 0 s".
        reject(noSlotAvailable(opts.timeoutMs / 1000));
      }, opts.timeoutMs);
      const onAbort = () => {
        cleanup();
        reject(opts.signal!.reason);
      };
      const cleanup = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      // Slots may already be free for this model even though others wait for a different one.
      this.wake();
    });
  }

  /**
   * Take an idle slot for background work (a save) without planning; false when it is busy or disabled. Give it
   * back with `release(slot, { touch: false })`.
   */
  takeForBackground(slot: SlotState): boolean {
    if (slot.busy || slot.disabled) return false;
    w(slot).busy = true;
    w(slot).background = true;
    this.noteChange(slot);
    return true;
  }

  /** When a slot of the backend was last taken or given back (performance.now(); 0: never): how long it is quiet. */
  lastChangeOn(backend: number): number {
    return this.changedAt.get(backend) ?? 0;
  }

  private noteChange(slot: SlotState): void {
    this.changedAt.set(slot.backend, performance.now());
  }

  /** Requests waiting for a slot now. */
  waiting(): number {
    return this.waiters.length;
  }

  /** No slot of the backend is in use and no request waits for a slot: the server has nothing of ours to do. */
  backendIdle(backend: number): boolean {
    return this.waiters.length === 0 && !this.all().some((s) => s.backend === backend && s.busy);
  }

  /** Plan the waiting requests again (something they depend on changed, e.g. their patience ran out). */
  retry(): void {
    this.wake();
  }

  /** Give a slot back and let waiters try again. `touch: false`: background work, the LRU order stays. */
  release(slot: SlotState, opts: { touch?: boolean } = {}): void {
    this.noteChange(slot);
    w(slot).busy = false;
    delete w(slot).background;
    if (opts.touch !== false) {
      w(slot).lastUsed = ++this.tick;
      w(slot).lastUsedAt = Date.now();
    }
    this.wake();
  }

  /** Disable slots at or beyond the server's real slot count (ids would wrap onto other slots otherwise). */
  limitSlots(backend: number, model: string, total: number): void {
    for (const slot of this.group(backend, model)) w(slot).disabled = slot.id >= total;
    this.wake();
  }

  /** Use exactly `total` slots for this group: the server's total_slots when no count was configured. */
  resize(backend: number, model: string, total: number): void {
    const slots = this.group(backend, model);
    for (let id = slots.length; id < total; id++) {
      slots.push({ backend, model: slots[0]?.model ?? model, id, busy: false, disabled: false, lastUsed: 0 });
    }
    this.limitSlots(backend, model, total);
  }

  /**
   * The server runs the task of `slot`'s request on slot `id` of the same group (it chose the slot itself, see
   * SlotPlan.fromServerCache): the two slot records trade ids, so the request's record names the slot its task
   * runs on. The other record may be held by a request that has not sent anything to the server yet, or by one sent
   * without a pin whose slot is not known yet (see ServerBehaviour.noteUnplaced): either then takes `slot`'s old
   * id, which names no slot it runs on either way.
   * False when the group has no usable slot `id`.
   */
  moveTo(slot: SlotState, id: number): boolean {
    const slots = this.group(slot.backend, slot.model);
    const other = slots.find((s) => s.id === id);
    if (other === slot) return true;
    if (!other || other.disabled) return false;
    w(other).id = slot.id;
    w(slot).id = id;
    slots.sort((a, b) => a.id - b.id);
    return true;
  }

  /** The slot now holds `content` (an answer ended, or a restore loaded it). */
  fill(slot: SlotState, content: SlotContent): void {
    w(slot).content = content;
  }

  /** What the slot holds is no longer known (an abort, a failed action, the server cleared or replaced it). */
  forget(slot: SlotState): void {
    w(slot).content = undefined;
  }

  /**
   * Forget what the idle slots of a backend held (it restarted, was unreachable, or unloaded their model), or only
   * those `which` names. A busy slot's content is its request's to record.
   */
  forgetIdleOn(backend: number, which: (slot: SlotState) => boolean = () => true): void {
    for (const slot of this.all()) if (slot.backend === backend && !slot.busy && which(slot)) this.forget(slot);
  }

  /**
   * A task started on a backend that clears its idle slots: every slot there whose task is not `running` lost its
   * content, busy or not (a request still waiting at the launch gate holds its slot, yet the server sees it idle).
   * Returns the contents forgotten.
   */
  forgetClearedOn(backend: number, running: (slot: SlotState) => boolean): SlotContent[] {
    const cleared: SlotContent[] = [];
    for (const slot of this.all()) {
      if (slot.backend !== backend || running(slot)) continue;
      if (slot.content) cleared.push(slot.content);
      this.forget(slot);
    }
    return cleared;
  }

  /** A save of `content` succeeded: if the slot still holds it, it is on disk now. */
  markSaved(slot: SlotState, content: SlotContent): void {
    if (slot.content === content) (content as Writable<SlotContent>).saved = true;
  }

  /** The entry `key` left the disk: a slot that still holds that content must be saved again before it is overwritten. */
  markUnsaved(key: string): void {
    for (const slot of this.all()) if (slot.content?.key === key) (slot.content as Writable<SlotContent>).saved = false;
  }

  private tryPlan(model: string, plan: PlanFn): SlotPlan | undefined {
    const chosen = plan(this.candidates(model));
    if (chosen) {
      this.noteChange(chosen.slot);
      w(chosen.slot).busy = true;
      w(chosen.slot).lastUsed = ++this.tick;
      w(chosen.slot).lastUsedAt = Date.now();
    }
    return chosen;
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) {
      const chosen = this.tryPlan(waiter.model, waiter.plan);
      if (chosen) waiter.resolve(chosen);
    }
  }
}
