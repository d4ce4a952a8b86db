/**
 * llama-server's host-memory prompt cache (`--cache-ram`, MiB; server_prompt_cache): slot states stored when a
 * slot is about to be reused for another prompt or sits idle at a task launch, and loaded back into the slot a
 * later prompt gets. As on the real server: a state already covered by an entry is not stored again, entries it
 * covers are dropped, the oldest entries go first beyond the limit (FIFO), and a loaded entry leaves the cache
 * (the slot holds it now). It belongs to one model instance: `erase` leaves it alone, a restart or unload loses it.
 */
import { commonPrefixLength } from './tokenizer.js';

/** The entry chosen for a prompt and how many leading tokens it shares with it. */
export interface RamMatch {
  tokens: readonly string[];
  lcp: number;
}

/** An insertion-ordered list of token lists bounded by modelled KV bytes. */
export class RamPromptCache {
  /** Oldest first. */
  private entries: (readonly string[])[] = [];

  /**
   * @param limitBytes the budget (`--cache-ram` × 2^20); 0 disables the cache
   * @param kvBytesPerToken modelled KV size of one token
   */
  constructor(
    readonly limitBytes: number,
    private readonly kvBytesPerToken: number,
  ) {}

  /** False when the cache is off (`--cache-ram 0`). */
  get enabled(): boolean {
    return this.limitBytes > 0;
  }

  /** Modelled bytes currently held. */
  get bytes(): number {
    return this.entries.reduce((sum, e) => sum + this.sizeOf(e), 0);
  }

  /** Number of entries held. */
  get size(): number {
    return this.entries.length;
  }

  /** Modelled bytes of a token list. */
  sizeOf(tokens: readonly string[]): number {
    return tokens.length * this.kvBytesPerToken;
  }

  /**
   * Stores a slot state (server_prompt_cache::alloc): skipped when an entry already holds all of it ("prompt is
   * already in the cache"); entries that are a prefix of it are dropped; states larger than the budget are not kept.
   */
  put(tokens: readonly string[]): void {
    if (!this.enabled || tokens.length === 0 || this.sizeOf(tokens) > this.limitBytes) return;
    if (this.entries.some((e) => commonPrefixLength(e, tokens) === tokens.length)) return;
    this.entries = this.entries.filter((e) => commonPrefixLength(e, tokens) !== e.length);
    this.entries.push(tokens);
    let total = this.bytes;
    while (total > this.limitBytes && this.entries.length > 0) total -= this.sizeOf(this.entries.shift()!);
  }

  /**
   * Removes and returns the entry to load for `prompt` into a slot holding `current` (server_prompt_cache::load):
   * an entry qualifies when the prompt keeps at least a quarter of it, and wins when it keeps a larger fraction of
   * itself than the slot's state does (an empty slot: any) and covers more of the prompt. An entry that does not
   * `fit` the slot (a unified KV buffer without enough free cells) is not loaded and stays in the cache: then
   * 'no room'.
   */
  take(
    prompt: readonly string[],
    current: readonly string[],
    fits: (tokens: readonly string[]) => boolean = () => true,
  ): RamMatch | 'no room' | undefined {
    if (prompt.length === 0) return undefined;
    const lcpNow = commonPrefixLength(current, prompt);
    let fKeepBest = current.length > 0 ? lcpNow / current.length : -1;
    let fSimBest = lcpNow / prompt.length;
    let best = -1;
    let bestLcp = 0;
    this.entries.forEach((e, i) => {
      const lcp = commonPrefixLength(e, prompt);
      const fKeep = lcp / e.length;
      const fSim = lcp / prompt.length;
      if (fKeep < 0.25) return; // "don't trash large prompts"
      if (fKeepBest < fKeep && fSimBest < fSim) {
        fKeepBest = fKeep;
        fSimBest = fSim;
        best = i;
        bestLcp = lcp;
      }
    });
    if (best < 0) return undefined;
    if (!fits(this.entries[best]!)) return 'no room';
    const [tokens] = this.entries.splice(best, 1);
    return { tokens: tokens!, lcp: bestLcp };
  }

  /** Drops everything (restart, unload). */
  clear(): void {
    this.entries = [];
  }
}
