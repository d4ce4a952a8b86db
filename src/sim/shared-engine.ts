/**
 * One main loop and one GPU per llama-server process (`--engine shared`, the default). The loop alternates:
 * 1. tasks (slot save / restore / erase, a chat's launch with its RAM-cache moves) run one after the other, each
 *    holding the engine for its whole modelled duration, so every other slot stalls meanwhile;
 * 2. one iteration: a batch of up to `batchTokens` prompt tokens (llama-server's `n_batch`), taken from the
 *    prefilling slots in slot-id order (each as much as fits; measured on the real server: a prompt on a lower
 *    slot takes the batch first, and one sent earlier on a higher slot waits for it), plus one decode step for every
 *    generating slot in the same batch (decoding is memory-bound: k slots cost about what one costs). An iteration
 *    costs its prompt tokens plus one decode step when any slot is generating; a prefill's progress, and its end,
 *    show at the end of the iteration that took its tokens.
 * Work that arrives during an iteration waits for its end. A model clock sums the iterations and holds, and
 * `timings` are differences on it; the wall clock follows it × timeScale, paced per busy period.
 */
import type { ComputeEngine, Hold } from './compute-engine.js';
import { AbortedError, Pacer, type CostModel } from './cost-model.js';

/** A prefill (units = prompt tokens) or a generation (units = tokens) in the engine. */
interface Work {
  /** Where a prefill's tokens go in a batch: its slot's id (lower first). */
  order: number;
  left: number;
  done: number;
  /** Model clock at the start of the work: its first iteration (prefill) or the end of the prefill (decode). */
  startMs: number | undefined;
  onProgress(done: number): void;
  /** Leaves the engine with a result (model ms since startMs) or an error; later calls are ignored. */
  finish(result: number | Error): void;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The shared compute of one process. */
export class SharedEngine implements ComputeEngine {
  private nowMs = 0;
  private readonly prefills: Work[] = [];
  private readonly decodes: Work[] = [];
  private readonly tasks: (() => Promise<void>)[] = [];
  private running = false;
  private pacer: Pacer;

  constructor(private readonly cost: CostModel) {
    this.pacer = new Pacer(cost.timeScale);
  }

  prefill(tokens: number, signal: AbortSignal, onProgress: (done: number) => void, slotId = 0): Promise<number> {
    return this.submit(this.prefills, tokens, signal, onProgress, undefined, slotId);
  }

  generate(tokens: number, signal: AbortSignal, onToken: (i: number) => void): Promise<number> {
    // Called as the prefill ends, between iterations: generation time counts from there, as on the real server.
    return this.submit(this.decodes, tokens, signal, (done) => onToken(done - 1), this.nowMs, 0);
  }

  task<T>(job: (hold: Hold) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.tasks.push(async () => {
        const hold: Hold = async (ms) => {
          this.nowMs += ms;
          await this.pacer.advance(ms);
        };
        try {
          resolve(await job(hold));
        } catch (err) {
          reject(err);
        }
      });
      this.wake();
    });
  }

  private submit(
    list: Work[],
    units: number,
    signal: AbortSignal,
    onProgress: (done: number) => void,
    startMs: number | undefined,
    order: number,
  ): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (signal.aborted) return reject(new AbortedError());
      if (units <= 0) return resolve(0);
      const onAbort = (): void => work.finish(new AbortedError());
      const work: Work = {
        order,
        left: units,
        done: 0,
        startMs,
        onProgress,
        finish: (result) => {
          const i = list.indexOf(work);
          if (i < 0) return;
          list.splice(i, 1);
          signal.removeEventListener('abort', onAbort);
          if (result instanceof Error) reject(result);
          else resolve(result);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      list.push(work);
      this.wake();
    });
  }

  private wake(): void {
    if (this.running) return;
    this.running = true;
    this.pacer = new Pacer(this.cost.timeScale); // a new busy period: idle time is not owed to the wall clock
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        // Lets the continuations of the last iteration (a prefill that ended starts decoding) queue their work.
        await nextTurn();
        const task = this.tasks.shift();
        if (task) await task();
        else if (this.prefills.length > 0 || this.decodes.length > 0) await this.iterate();
        else break;
      }
    } finally {
      this.running = false;
    }
  }

  private async iterate(): Promise<void> {
    const { prefillMsPerToken, decodeMsPerToken, batchTokens } = this.cost;
    for (const p of this.prefills) p.startMs ??= this.nowMs;
    // A stable sort: prompts given the same slot id (the default) keep the order they came in.
    const batch: Array<{ work: Work; tokens: number }> = [];
    let room = batchTokens;
    for (const work of [...this.prefills].sort((a, b) => a.order - b.order)) {
      if (room === 0) break;
      const tokens = Math.min(room, work.left);
      batch.push({ work, tokens });
      room -= tokens;
    }
    const decoding = [...this.decodes];
    const ms = (batchTokens - room) * prefillMsPerToken + (decoding.length > 0 ? decodeMsPerToken : 0);
    await this.pacer.advance(ms);
    this.nowMs += ms;
    for (const { work, tokens } of batch) this.advance(this.prefills, work, tokens);
    for (const d of decoding) this.advance(this.decodes, d, 1);
  }

  /** Credits `units` to `work` if it is still in `list`; true when it stays there (not finished). */
  private advance(list: Work[], work: Work, units: number): boolean {
    if (!list.includes(work)) return false; // aborted during the iteration
    work.left -= units;
    work.done += units;
    try {
      work.onProgress(work.done);
    } catch (err) {
      work.finish(err instanceof Error ? err : new Error(String(err)));
    }
    if (!list.includes(work)) return false; // failed, or aborted by its own progress callback
    if (work.left > 0) return true;
    work.finish(this.nowMs - (work.startMs ?? this.nowMs));
    return false;
  }
}
