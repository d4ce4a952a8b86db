/**
 * The heavy work the proxy has running on each backend: prefills (a chat until its first byte comes back) and slot
 * actions (save, restore). llama-server runs them on one main loop and one GPU, so a prefill that overlapped another
 * heavy phase reports a slower `prompt_ms` than the model's own speed. Decoding slots hardly slow a prefill down
 * and are not counted. Each phase can say afterwards whether it had the backend to itself.
 */
export interface HeavyPhase {
  /** No other heavy phase ran on the backend at any moment since this one began. */
  alone(): boolean;
  /** The phase is over (idempotent). */
  end(): void;
}

export class BackendActivity {
  /** Heavy phases running now, per backend. */
  private readonly running = new Map<number, number>();
  /** Heavy phases begun so far, per backend: one begun (and perhaps ended) meanwhile shows as a change. */
  private readonly begun = new Map<number, number>();

  begin(backend: number): HeavyPhase {
    const othersRunning = this.running.get(backend) ?? 0;
    this.running.set(backend, othersRunning + 1);
    const begunNow = (this.begun.get(backend) ?? 0) + 1;
    this.begun.set(backend, begunNow);
    // Nobody was running when it began and nobody began since: it had the backend to itself.
    const aloneSoFar = () => othersRunning === 0 && this.begun.get(backend) === begunNow;
    let endedAlone: boolean | undefined;
    return {
      alone: () => endedAlone ?? aloneSoFar(),
      end: () => {
        if (endedAlone !== undefined) return;
        endedAlone = aloneSoFar();
        this.running.set(backend, (this.running.get(backend) ?? 1) - 1);
      },
    };
  }
}
