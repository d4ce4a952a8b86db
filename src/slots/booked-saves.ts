/**
 * Saves booked for the end of a running task, on a backend that clears its idle slots (llama-server's default).
 *
 * There, the next task launched after a conversation's answer clears its slot, so its state must be on disk
 * before any launch that might come after the answer's end. Asking the server then means a `GET /slots` and a wait
 * for tasks near their end, and still loses a task that stops unforeseen (an end-of-generation token) at the
 * moment a launch arrives. Instead, a launch that may come right after a running task's end books that task's
 * save: llama-server defers a slot action on a busy slot and, when the slot's task ends, puts the deferred action
 * at the front of its queue, ahead of any task queued meanwhile (`server_queue::pop_deferred_task`). The save so
 * runs on the state the answer left, before the launch can clear it (checked on the real server: 12 of 12 booked
 * saves held the whole state under a stream of launches; 4 of 4 saves asked after the answer found the slot
 * cleared).
 *
 * One booking per backend at a time: the server keeps one queue of deferred tasks, and a slot's end takes out the
 * oldest of them, whichever slot it waits for. With two saves deferred, the task that ends first may take out the
 * other's save (deferred again), leaving its own in the queue while the next launch clears its slot. Once a
 * booking is answered, the save of another running task there is booked in its place.
 *
 * A save booked at the very moment the task ends can still lose: another task may reach the server's queue first
 * (requests travel on different connections, read by different threads of a loaded server), or a task that waited
 * for a free slot may leave the deferred queue ahead of it; seen with replies a few tokens long (4 in about 100).
 * So while other requests of ours are active on the backend, a task's save is booked as soon as it can be, at its
 * first token (bookSaveUnderContention), and a launch that books one for a task already ended waits for its answer
 * (letFinishedTasksEnd in before-launch.ts).
 */
import type { BookedSave, CacheOpResult, SlotCache } from './slot-cache.js';
import type { SlotContent, SlotState } from './slot-state.js';

interface RunningTask {
  key: string;
  model: string;
}

interface Booking {
  save: BookedSave;
  /** The server answered the save: it no longer waits in the server's deferred queue. */
  answered: boolean;
}

export class BookedSaves {
  /** Big tasks in flight, by slot: what a booked save of theirs is filed under. */
  private readonly running = new Map<SlotState, RunningTask>();
  private readonly booked = new Map<SlotState, Booking>();

  /**
   * @param bookable whether a save can be booked for the slot's task now: on a backend that clears idle slots, past
   *   its prefill, on a slot the proxy knows (ServerBehaviour.mayEndSoon)
   */
  constructor(
    private readonly slotCache: Pick<SlotCache, 'book'>,
    private readonly bookable: (slot: SlotState) => boolean,
  ) {}

  /** A big request's task was sent to the slot: its state will be filed under `key` once it ends. */
  taskRunning(slot: SlotState, key: string, model: string): void {
    this.running.set(slot, { key, model });
  }

  /**
   * Book the save of the slot's running task for its end. True when a save is booked for it (now or before); false
   * when none can be (no big task of ours known there, or another booking on the backend still unanswered).
   */
  book(slot: SlotState): boolean {
    if (this.booked.has(slot)) return true;
    const task = this.running.get(slot);
    if (!task || this.bookedOn(slot.backend) || !this.bookable(slot)) return false;
    const booking: Booking = { save: this.slotCache.book(slot, task.key, task.model), answered: false };
    this.booked.set(slot, booking);
    // Outstanding until the server answers: only then has it left the server's deferred queue. A call that failed
    // (a generation longer than REQUEST_TIMEOUT) may still wait there: the backend takes no other booking until
    // this task ends (taskEnded), when the server has run it.
    void booking.save.answered.then((responded) => {
      if (!responded || this.booked.get(slot) !== booking) return;
      booking.answered = true;
      this.bookAnotherOn(slot.backend);
    });
    return true;
  }

  /** Whether a save is booked for the slot's task. */
  has(slot: SlotState): boolean {
    return this.booked.has(slot);
  }

  /** The server's answer to the save booked for the slot's task, when one is booked. */
  answered(slot: SlotState): Promise<boolean> | undefined {
    return this.booked.get(slot)?.save.answered;
  }

  /** Book the save of a running task on the backend that has none yet, if one can be. */
  private bookAnotherOn(backend: number): void {
    for (const slot of this.running.keys())
      if (slot.backend === backend && !this.booked.has(slot) && this.book(slot)) return;
  }

  /**
   * The slot's task ended and the slot was recorded to hold `content` (`undefined`: not known). Settles the save
   * booked for it, if any, with the result; undefined when there was none.
   */
  async taskEnded(slot: SlotState, content: SlotContent | undefined): Promise<CacheOpResult | undefined> {
    this.running.delete(slot);
    const booking = this.booked.get(slot);
    if (!booking) return undefined;
    try {
      return await booking.save.settle(content);
    } finally {
      this.booked.delete(slot);
    }
  }

  private bookedOn(backend: number): boolean {
    return [...this.booked].some(([slot, booking]) => slot.backend === backend && !booking.answered);
  }
}
