/**
 * One llama-server slot: the token list held in its KV cache and a FIFO of jobs. A slot serves one job at a time;
 * chats pinned to a busy slot and slot actions on it wait their turn, which is how the real server defers a save
 * or restore sent while the slot is decoding.
 */

/** What `/slots` shows in `next_token` for a slot. */
export interface NextTokenState {
  has_next_token: boolean;
  has_new_line: boolean;
  n_remain: number;
  n_decoded: number;
}

/** A slot of one model instance. */
export class Slot {
  /** Tokens in the slot's KV cache; replaced, never mutated, so RAM-cache entries may share the arrays. */
  tokens: readonly string[] = [];
  /** Set by a restore on a model whose restores give no reuse (sliding-window): the next task reuses nothing. */
  reuseBlocked = false;
  /** Id of the last chat task; undefined while the slot never served one (then `/slots` shows the short form). */
  idTask: number | undefined;
  /** Sampling parameters of the last task, for `/slots`. */
  params: Record<string, unknown> | undefined;
  /** True while a chat task is running on the slot. */
  processing = false;
  /** LRU clock value of the last launch or end of a task. */
  lastUsed = -1;
  nextToken: NextTokenState = { has_next_token: false, has_new_line: false, n_remain: -1, n_decoded: 0 };

  private pending = 0;
  private tail: Promise<unknown> = Promise.resolve();

  /**
   * @param id the slot index
   * @param onIdle called whenever the slot's queue drains (the scheduler then serves waiting unpinned tasks)
   */
  constructor(
    readonly id: number,
    private readonly onIdle: () => void = () => undefined,
  ) {}

  /** True when no job is running or queued. */
  get idle(): boolean {
    return this.pending === 0;
  }

  /** Queues a job behind the slot's running and queued jobs; resolves with its result. */
  run<T>(job: () => Promise<T>): Promise<T> {
    this.pending++;
    const result = this.tail.then(job);
    this.tail = result.then(
      () => this.release(),
      () => this.release(),
    );
    return result;
  }

  private release(): void {
    this.pending--;
    if (this.pending === 0) this.onIdle();
  }

  /** Empties the KV cache of the slot (erase, failed restore, idle-slot purge). */
  clear(): void {
    this.tokens = [];
    this.reuseBlocked = false;
  }

  /**
   * The slot as `GET /slots` shows it: the short form until it served a chat task, then the long form with
   * `id_task`, `n_prompt_tokens` (tokens now in its KV), `params` and `next_token` (see get_slots.txt).
   */
  toJson(nCtx: number): Record<string, unknown> {
    const short = { id: this.id, n_ctx: nCtx, speculative: false, is_processing: this.processing };
    if (this.idTask === undefined) return short;
    return {
      ...short,
      id_task: this.idTask,
      n_prompt_tokens: this.tokens.length,
      n_prompt_tokens_processed: 0,
      n_prompt_tokens_cache: 0,
      params: this.params ?? {},
      next_token: [{ ...this.nextToken }],
    };
  }
}
