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
 * next holder of the gate can reach the server first and be cleared by that launch. So a launch that restores first
 * waits for `launched`. (A resident slot needs no such wait: the launch before it already counted that slot as
 * cleared, and the plan became a restore at the gate.)
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

  /**
   * A task sent without a pin is on its way to a slot the server picks: until `found` settles, a launch pinned to a
   * slot might pick that very slot, and another big unpinned task could not be told from it (see placed).
   */
  notePlacing(backend: number, found: Promise<unknown>): void {
    track(this.placing, backend, found);
  }

  /** Resolves once every task sent without a pin on this backend so far has been found on its slot (or given up). */
  placed(backend: number): Promise<void> {
    return settledAll(this.placing, backend);
  }

  /** A task sent without a pin runs on the server once `running` settles (seen on its slot, its first byte, its end). */
  noteLaunching(backend: number, running: Promise<unknown>): void {
    track(this.launching, backend, running);
  }

  /** Resolves once every task sent without a pin on this backend so far runs on the server (or has ended). */
  launched(backend: number): Promise<void> {
    return settledAll(this.launching, backend);
  }

  /** Wait for the previous request's launch on this backend to finish, then hold the gate. */
  async enter(backend: number): Promise<GatePass> {
    const previous = this.tails.get(backend) ?? Promise.resolve();
    let open!: () => void;
    const mine = new Promise<void>((resolve) => (open = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(backend, tail);
    await previous;
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
}

function track(sets: Map<number, Set<Promise<unknown>>>, backend: number, pending: Promise<unknown>): void {
  const set = sets.get(backend) ?? new Set();
  sets.set(backend, set);
  set.add(pending);
  const done = () => set.delete(pending);
  pending.then(done, done);
}

async function settledAll(sets: Map<number, Set<Promise<unknown>>>, backend: number): Promise<void> {
  const set = sets.get(backend);
  if (set && set.size > 0) await Promise.allSettled([...set]);
}
