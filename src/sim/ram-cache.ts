/**
 * llama-server's host-memory prompt cache (`--cache-ram`, MiB): slot states kept in RAM when a slot is about to
 * be reused for another prompt, and loaded back into whichever slot a later prompt gets when that gives a longer
 * prefix. Least recently used entries are evicted beyond the limit. It belongs to one model instance: `erase`
 * leaves it alone, a restart or unload loses it.
 */
import { commonPrefixLength } from './tokenizer.js';

interface Entry {
  tokens: readonly string[];
  lastUsed: number;
}

/** The best entry for a prompt and how many leading tokens it shares with it. */
export interface RamMatch {
  tokens: readonly string[];
  lcp: number;
}

/** An LRU of token lists bounded by modelled KV bytes. */
export class RamPromptCache {
  private entries: Entry[] = [];
  private clock = 0;

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
    return this.entries.reduce((sum, e) => sum + this.sizeOf(e.tokens), 0);
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
   * Stores a slot state. When an entry already extends it, that entry is only refreshed; entries that are a prefix
   * of the new one are dropped (it answers every prompt they would); states larger than the budget are not kept.
   */
  put(tokens: readonly string[]): void {
    if (!this.enabled || tokens.length === 0 || this.sizeOf(tokens) > this.limitBytes) return;
    const now = ++this.clock;
    const covering = this.entries.find(
      (e) => e.tokens.length >= tokens.length && commonPrefixLength(e.tokens, tokens) === tokens.length,
    );
    if (covering) {
      // An entry at least as long already answers every prompt this one would.
      covering.lastUsed = now;
      return;
    }
    this.entries = this.entries.filter(
      (e) => !(e.tokens.length < tokens.length && commonPrefixLength(e.tokens, tokens) === e.tokens.length),
    );
    this.entries.push({ tokens, lastUsed: now });
    this.evict();
  }

  /** The entry sharing the longest prefix with `prompt` (most recent on ties), refreshed as used. */
  best(prompt: readonly string[]): RamMatch | undefined {
    let best: Entry | undefined;
    let bestLcp = 0;
    for (const e of this.entries) {
      const lcp = commonPrefixLength(e.tokens, prompt);
      if (lcp > bestLcp || (lcp === bestLcp && lcp > 0 && best !== undefined && e.lastUsed > best.lastUsed)) {
        best = e;
        bestLcp = lcp;
      }
    }
    if (!best) return undefined;
    best.lastUsed = ++this.clock;
    return { tokens: best.tokens, lcp: bestLcp };
  }

  /** Drops everything (restart, unload). */
  clear(): void {
    this.entries = [];
  }

  private evict(): void {
    let total = this.bytes;
    this.entries.sort((a, b) => a.lastUsed - b.lastUsed);
    while (total > this.limitBytes && this.entries.length > 0) {
      total -= this.sizeOf(this.entries.shift()!.tokens);
    }
  }
}
