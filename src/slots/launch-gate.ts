/**
 * One task launch at a time on a backend that clears its idle slots (llama-server's default configuration).
 *
 * There, every completion task that starts clears every other idle slot, including one the proxy has just
 * restored or found resident for another request whose task has not started yet: that request would then be
 * pinned to an empty slot and prefill everything. So on such a backend a request prepares its slot (saves what the
 * launch will clear, restores its own conversation) and sends its task inside the gate, and leaves the gate once
 * the server shows the task running on its slot. Prefills still run side by side; only their starts are ordered.
 */

export interface GatePass {
  /** Leave the gate (idempotent). */
  release(): void;
}

export class LaunchGate {
  private readonly tails = new Map<number, Promise<void>>();

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
