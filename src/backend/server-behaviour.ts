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

/** One backend's behaviour (each `Backend` has its own). */
export class ServerBehaviour {
  /** How the server treats idle slots: seen clearing them, seen keeping them, or not known yet. */
  private idleSlots: 'clears' | 'keeps' | undefined;
  /**
   * Since a restart, `idleSlots` is what the server did before it, presumed until seen again: a server that comes
   * back (a crash, a TTL unload, a sleep) mostly comes back with the same flags, and presuming that it keeps idle
   * slots while it clears them would lose the conversations answered until the traffic shows it.
   */
  private presumed = false;
  private lastContact: number | undefined;
  /** Tasks started on the backend; per slot, the count and the time (`now`) when it last started one. */
  private tasks = 0;
  private readonly lastStart = new Map<SlotState, { task: number; at: number }>();
  /** The latest tasks started (the last RECENT_STARTS): when, on which slot record, and whether sent without a pin. */
  private readonly recentStarts: Array<{ task: number; at: number; slot: SlotState; unpinned: boolean }> = [];
  /** Slots whose request is in flight (sent, its end not yet read by the proxy), and what is known of each. */
  private readonly inFlight = new Map<SlotState, InFlight>();
  /** The latest task id `GET /slots` showed (see lastTaskShown): a lower one later means the server restarted. */
  private lastTask = -1;
  /** `GET /slots` showed a task's mark (task-mark.ts): a marked task is found by it, with no look before its launch. */
  private marksShown = false;

  constructor(private readonly now: () => number = Date.now) {}

  /** True once the backend was seen clearing idle slots by itself. */
  clearsIdleSlots(): boolean {
    return this.idleSlots === 'clears';
  }

  /**
   * True once the backend was seen keeping an idle slot while another ran a task (presumed so after a restart until
   * seen otherwise): `-np N`, or any KV buffer split per slot.
   */
  keepsIdleSlots(): boolean {
    return this.idleSlots === 'keeps';
  }

  /** Whether `GET /slots` was seen showing a task's mark (then a marked task needs no look before its launch). */
  showsTaskMarks(): boolean {
    return this.marksShown;
  }

  noteTaskMarkShown(): void {
    this.marksShown = true;
  }

  /** Whether the backend's treatment of idle slots is known (clears them, or was seen keeping them since it started). */
  settled(): boolean {
    return this.idleSlots !== undefined && !this.presumed;
  }

  /** Returns true when this is news (worth a log line). */
  noteClearsIdleSlots(): boolean {
    const news = this.idleSlots !== 'clears';
    this.idleSlots = 'clears';
    this.presumed = false;
    return news;
  }

  /** The start-up probe saw the server keep an idle slot. */
  noteKeepsIdleSlots(): void {
    this.seenKeeping();
  }

  /** `GET /slots` showed the slot still holding its content: proof of keeping if another task ran since its own. */
  noteSlotKept(slot: SlotState): void {
    if (this.tasks > (this.lastStart.get(slot)?.task ?? 0)) this.seenKeeping();
  }

  /** Seen keeping an idle slot: believed unless the server was seen clearing one since it started. */
  private seenKeeping(): void {
    if (this.idleSlots === 'clears' && !this.presumed) return;
    this.idleSlots = 'keeps';
    this.presumed = false;
  }

  /**
   * A completion task is about to start on the slot; `unpinned`: sent without a pin, it runs where the server puts it
   * (its record names no real slot until it is found, and a small one's never does).
   */
  noteTaskStart(slot: SlotState, unpinned = false): void {
    const start = { task: ++this.tasks, at: this.now() };
    this.lastStart.set(slot, start);
    this.recentStarts.push({ ...start, slot, unpinned });
    if (this.recentStarts.length > RECENT_STARTS) this.recentStarts.shift();
  }

  /**
   * The slot's request was sent to the server: its task runs, or is about to, or has just ended there. A streamed
   * one is in its prefill until its first byte (noteFirstByte). `big`: what it leaves in the slot is worth saving.
   * `tokens`: about what it will hold in the slot (a shared KV buffer's room counts it: see slot-room.ts).
   */
  noteLaunched(slot: SlotState, streamed: boolean, big = true, tokens = 0): void {
    // Launched again before its last end was read: whoever waits for that end waits for this one's.
    const waiters = this.inFlight.get(slot)?.endWaiters ?? [];
    this.inFlight.set(slot, { streamed, prefilling: streamed, big, tokens, unplaced: false, endWaiters: waiters });
  }

  /** The slot's streamed answer began: its task has generated a token. */
  noteFirstByte(slot: SlotState): void {
    const request = this.inFlight.get(slot);
    if (request) request.prefilling = false;
  }

  /** The slot's request ended. */
  noteEnded(slot: SlotState): void {
    const request = this.inFlight.get(slot);
    this.inFlight.delete(slot);
    for (const wake of request?.endWaiters ?? []) wake();
  }

  /** Resolves when the slot's request has ended at the proxy (at once if none runs), or after `ms`. */
  whenEnded(slot: SlotState, ms: number): Promise<void> {
    const request = this.inFlight.get(slot);
    if (!request) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      request.endWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Another task started on the backend after the slot's own. On a backend that clears idle slots, that start may
   * have reached the server a moment after the slot's task ended there, before the proxy read that end, and cleared
   * the slot (the check before each start cannot see a task that ends during the server's next iteration).
   */
  otherTaskStartedSince(slot: SlotState): boolean {
    return this.tasks > (this.lastStart.get(slot)?.task ?? 0);
  }

  /**
   * A task started on another slot of the backend within the last `ms` milliseconds: on another slot record, or sent
   * without a pin (it ran where the server put it, though its record may be the very one this slot's task took next).
   */
  otherStartedWithin(slot: SlotState, ms: number): boolean {
    const since = this.now() - ms;
    const own = this.lastStart.get(slot)?.task;
    return this.recentStarts.some(
      (start) => start.at >= since && start.task !== own && (start.slot !== slot || start.unpinned),
    );
  }

  launched(slot: SlotState): boolean {
    return this.inFlight.has(slot);
  }

  /** What the slot's running task is expected to hold (0 when none runs or it was not said). */
  tokensInFlight(slot: SlotState): number {
    return this.inFlight.get(slot)?.tokens ?? 0;
  }

  /**
   * In flight on a slot the proxy knows: pinned, or found where the server put it (a small task sent without a pin
   * is never looked for).
   */
  launchedWhereKnown(slot: SlotState): boolean {
    return this.inFlightWhereKnown(slot) !== undefined;
  }

  private inFlightWhereKnown(slot: SlotState): InFlight | undefined {
    const request = this.inFlight.get(slot);
    return request?.big && !request.unplaced ? request : undefined;
  }

  /** The slot's request was sent without a pin: until notePlaced, its slot record names no real slot. */
  noteUnplaced(slot: SlotState): void {
    const request = this.inFlight.get(slot);
    if (request) request.unplaced = true;
  }

  /** The slot record of a request sent without a pin now names where it runs. */
  notePlaced(slot: SlotState): void {
    const request = this.inFlight.get(slot);
    if (request) request.unplaced = false;
    const start = this.recentStarts.findLast((s) => s.slot === slot);
    if (start) start.unpinned = false;
  }

  /**
   * A big task of ours on this slot (where the proxy knows) may still be in its prefill: a stream before its first
   * byte, or any answer that comes whole.
   */
  mayBePrefilling(slot: SlotState): boolean {
    const request = this.inFlightWhereKnown(slot);
    return request !== undefined && (request.prefilling || !request.streamed);
  }

  /**
   * The slot's task may end before the server takes up a task sent now, leaving content worth saving: in flight on
   * a big prompt where the proxy knows, and not a stream still waiting for its first token (a task in its prefill
   * still has its whole answer to generate). A non-streamed answer says nothing until its end, so it may always be
   * ending.
   */
  mayEndSoon(slot: SlotState): boolean {
    const request = this.inFlightWhereKnown(slot);
    return request !== undefined && !request.prefilling;
  }

  /** The proxy just heard from the backend (an answer ended, a slot action answered). */
  noteContact(): void {
    this.lastContact = this.now();
  }

  /** Milliseconds since the proxy last heard from the backend (Infinity if never). */
  quietFor(): number {
    return this.lastContact === undefined ? Infinity : this.now() - this.lastContact;
  }

  /**
   * `GET /slots` showed `last` as the latest task id: true when it is lower than one shown before, which only a
   * server that started again since can show (the caller then forgets the backend, this with it).
   */
  noteLastTaskShown(last: number): boolean {
    const startedAgain = last < this.lastTask;
    this.lastTask = Math.max(this.lastTask, last);
    return startedAgain;
  }

  /**
   * The backend restarted or was unreachable: what it did with idle slots is presumed until seen again (it may come
   * back configured differently), and its task ids start over.
   */
  forget(): void {
    this.presumed = this.idleSlots !== undefined;
    this.lastTask = -1;
  }
}

/** A request of ours in flight on a slot. */
interface InFlight {
  /** Streamed; else answered whole, and nothing says when its prefill ends. */
  streamed: boolean;
  /** A stream whose first byte has not arrived: its task is still prefilling. */
  prefilling: boolean;
  /** Its prompt is big; what a small one leaves in its slot is never saved. */
  big: boolean;
  /** The tokens it is expected to leave in its slot (see noteLaunched). */
  tokens: number;
  /** Sent without a pin and its slot not found yet: its record names no real slot. */
  unplaced: boolean;
  /** Woken when it ends (see whenEnded). */
  endWaiters: Array<() => void>;
}

/** Task starts remembered for otherStartedWithin: more than can start within its window on any server. */
const RECENT_STARTS = 64;
