/**
 * One task launch at a time on a backend that clears its idle slots (llama-server's default configuration).
 *
 * There, every completion task that starts clears every other idle slot, including one the proxy has just
 * restored or found resident for another request whose task has not started yet: that request would then be
 * pinned to an empty slot and prefill everything. So on such a backend a request prepares its slot (saves what the
 * launch will clear, restores its own conversation) and sends its task inside the gate, and leaves the gate once
 * the server shows the task running on its slot. Prefills still run side by side; only their starts are ordered.
 * A task sent without a pin prepared no slot: it leaves the gate as soon as it is sent, and the launches that need
 * to know where it runs wait for `placed`. Sent is not launched, though: the server reads, templates and tokenizes
 * a request before it queues its task (about 10 ms for a small chat on a loaded machine), so a restore sent by the
 * next holder of the gate can reach the server first and be cleared by that launch. So a launch that counts on a
 * slot prepared for it first waits for `launched`: a restore before restoring, a resident one before its `GET /slots`
 * check (a task of the slot's that ended just before that late launch, unread by the proxy, was not counted as
 * cleared by it, and the check sees the clearing only once that launch runs).
 *
 * The gate also tells the loops that look at `GET /slots` for a task (placement, a pinned task's start) whether a
 * launch waits for their answer (`someoneWaits`, `nextArrival`): each look takes CPU time from the server, so they
 * look often only then.
 */

export interface GatePass {
  /** Leave the gate (idempotent). */
  release(): void;
}

export class LaunchGate {
  private readonly tails = new Map<number, Promise<void>>();
  /** Tasks sent without a pin whose slot is still being looked for, per backend. */
  private readonly placing = new Map<number, Set<Promise<unknown>>>();
  /** Tasks sent without a pin not known to run on the server yet, per backend. */
  private readonly launching = new Map<number, Set<Promise<unknown>>>();
  /** Requests waiting to launch, per backend: at the gate, or for `placed` or `launched`. */
  private readonly waiting = new Map<number, number>();
  /** Settles at the next request that comes to launch, per backend (see nextArrival). */
  private readonly arrivals = new Map<number, { promise: Promise<void>; arrive: () => void }>();

  /**
   * A task sent without a pin is on its way to a slot the server picks: until `found` settles, a launch pinned to a
   * slot might pick that very slot, and another big unpinned task could not be told from it (see placed).
   */
  notePlacing(backend: number, found: Promise<unknown>): void {
    track(this.placing, backend, found);
  }

  /** Resolves once every task sent without a pin on this backend so far has been found on its slot (or given up). */
  placed(backend: number): Promise<void> {
    return this.waitFor(backend, this.placing);
  }

  /** A task sent without a pin runs on the server once `running` settles (seen on its slot, its first byte, its end). */
  noteLaunching(backend: number, running: Promise<unknown>): void {
    track(this.launching, backend, running);
  }

  /** Resolves once every task sent without a pin on this backend so far runs on the server (or has ended). */
  launched(backend: number): Promise<void> {
    return this.waitFor(backend, this.launching);
  }

  /** Whether a request waits to launch on this backend now (at the gate, or for `placed` or `launched`). */
  someoneWaits(backend: number): boolean {
    return (this.waiting.get(backend) ?? 0) > 0;
  }

  /** Settles when the next request comes to launch on this backend: enters the gate, or waits for the tasks sent. */
  nextArrival(backend: number): Promise<void> {
    let next = this.arrivals.get(backend);
    if (!next) {
      let arrive!: () => void;
      const promise = new Promise<void>((resolve) => (arrive = resolve));
      next = { promise, arrive };
      this.arrivals.set(backend, next);
    }
    return next.promise;
  }

  /** Wait for the previous request's launch on this backend to finish, then hold the gate. */
  async enter(backend: number): Promise<GatePass> {
    const previous = this.tails.get(backend) ?? Promise.resolve();
    let open!: () => void;
    const mine = new Promise<void>((resolve) => (open = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(backend, tail);
    await this.countWaiting(backend, previous);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        open();
        if (this.tails.get(backend) === tail) this.tails.delete(backend);
      },
    };
  }

  private waitFor(backend: number, sets: Map<number, Set<Promise<unknown>>>): Promise<void> {
    const pending = sets.get(backend);
    if (!pending || pending.size === 0) return Promise.resolve();
    return this.countWaiting(backend, Promise.allSettled([...pending]));
  }

  /** Count a request as waiting on `backend` until `until` settles, and wake the loops that look for it. */
  private async countWaiting(backend: number, until: Promise<unknown>): Promise<void> {
    this.waiting.set(backend, (this.waiting.get(backend) ?? 0) + 1);
    this.arrivals.get(backend)?.arrive();
    this.arrivals.delete(backend);
    try {
      await until;
    } finally {
      this.waiting.set(backend, (this.waiting.get(backend) ?? 1) - 1);
    }
  }
}

function track(sets: Map<number, Set<Promise<unknown>>>, backend: number, pending: Promise<unknown>): void {
  const set = sets.get(backend) ?? new Set();
  sets.set(backend, set);
  set.add(pending);
  const done = () => set.delete(pending);
  pending.then(done, done);
}
