/**
 * What the proxy has learnt about how each backend treats its slots, beyond what its API declares.
 *
 * llama-server's default configuration (no `-np`: several slots on one unified KV buffer, `--cache-idle-slots`)
 * moves every idle slot into its RAM cache and clears it whenever a completion task starts. A pinned request that
 * then lands on the cleared slot skips the RAM-cache lookup and prefills from scratch. Such a backend is found out
 * by what it does (a save of a slot believed full saves nothing; `GET /slots` shows the slot empty while another
 * still holds its prompt), and from then on the proxy treats every task start there as an eviction of the other
 * idle slots: what they hold is saved before, and forgotten after (restored from disk when needed). A backend whose
 * slot was seen intact after another slot ran a task keeps its idle slots, and needs no more checks for this.
 */
import type { SlotState } from '../slots/slot-state.js';

export class ServerBehaviour {
  private readonly clearing = new Set<number>();
  private readonly keeping = new Set<number>();
  private readonly lastContact = new Map<number, number>();
  /** Tasks started per backend, and the count when each slot last started one. */
  private readonly tasks = new Map<number, number>();
  private readonly slotTask = new WeakMap<SlotState, number>();
  /** Slots whose request is in flight (sent, its end not yet read by the proxy). */
  private readonly running = new Set<SlotState>();
  private readonly endWaiters = new Map<SlotState, Array<() => void>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** True once the backend was seen clearing idle slots by itself. */
  clearsIdleSlots(backend: number): boolean {
    return this.clearing.has(backend);
  }

  /** Whether the backend's treatment of idle slots is known (clears them, or was seen keeping them). */
  settled(backend: number): boolean {
    return this.clearing.has(backend) || this.keeping.has(backend);
  }

  /** Returns true when this is news (worth a log line). */
  noteClearsIdleSlots(backend: number): boolean {
    if (this.clearing.has(backend)) return false;
    this.keeping.delete(backend);
    this.clearing.add(backend);
    return true;
  }

  /** The start-up probe saw the server keep an idle slot. */
  noteKeepsIdleSlots(backend: number): void {
    if (!this.clearing.has(backend)) this.keeping.add(backend);
  }

  /** `GET /slots` showed the slot still holding its content: proof of keeping if another task ran since its own. */
  noteSlotKept(backend: number, slot: SlotState): void {
    if ((this.tasks.get(backend) ?? 0) > (this.slotTask.get(slot) ?? 0) && !this.clearing.has(backend)) this.keeping.add(backend);
  }

  /** A completion task is about to start on the slot. */
  noteTaskStart(backend: number, slot: SlotState): void {
    const count = (this.tasks.get(backend) ?? 0) + 1;
    this.tasks.set(backend, count);
    this.slotTask.set(slot, count);
  }

  /** The slot's request was sent to the server: its task runs, or is about to, or has just ended there. */
  noteLaunched(slot: SlotState): void {
    this.running.add(slot);
  }

  /** The slot's request ended. */
  noteEnded(slot: SlotState): void {
    this.running.delete(slot);
    for (const wake of this.endWaiters.get(slot) ?? []) wake();
    this.endWaiters.delete(slot);
  }

  /** Resolves when the slot's request has ended at the proxy (at once if none runs), or after `ms`. */
  whenEnded(slot: SlotState, ms: number): Promise<void> {
    if (!this.running.has(slot)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.endWaiters.set(slot, [...(this.endWaiters.get(slot) ?? []), wake]);
    });
  }

  launched(slot: SlotState): boolean {
    return this.running.has(slot);
  }

  /** The proxy just heard from the backend (an answer ended, a slot action answered). */
  noteContact(backend: number): void {
    this.lastContact.set(backend, this.now());
  }

  /** Milliseconds since the proxy last heard from the backend (Infinity if never). */
  quietFor(backend: number): number {
    const at = this.lastContact.get(backend);
    return at === undefined ? Infinity : this.now() - at;
  }

  /** The backend restarted or was unreachable: it may come back configured differently. */
  forget(backend: number): void {
    this.clearing.delete(backend);
    this.keeping.delete(backend);
  }
}
