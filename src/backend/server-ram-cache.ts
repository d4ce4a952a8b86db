/**
 * Conversations the server moved into its own RAM cache before the proxy could save them to disk.
 *
 * On a backend that clears idle slots (llama-server's default configuration), a task start clears every idle slot
 * into the server's RAM cache. The proxy saves what it knows of before each of its launches, but a task that ends
 * unforeseen (an end-of-generation token, a stop string) during the server's iteration before a launch, or any task
 * start by another client, clears a slot the proxy could not save. The conversation is then whole in the RAM cache,
 * while disk holds at most an earlier turn. Its next turn is better sent without a pin: the server's own lookup
 * brings the whole conversation back (a request pinned to a cleared slot skips that lookup).
 *
 * The RAM cache is bounded (`--cache-ram`, 8 GiB by default) and evicts by itself, and the proxy cannot see what it
 * holds: an entry is trusted only while few other conversations can have pushed it out, and for a few minutes.
 */
import { continuesBlocks } from '../prompt/block-match.js';
import type { SlotContent } from '../slots/slot-state.js';

interface Held {
  content: SlotContent;
  notedAt: number;
  /** Starts of big tasks on the backend when it was noted: each may push another conversation into the cache. */
  bigStartsAtNote: number;
}

/** Big task starts after which an entry may have been evicted (one conversation can fill a GPU's cache share). */
const TRUSTED_BIG_STARTS = 4;
const TRUSTED_MS = 5 * 60_000;
const MAX_ENTRIES = 16;

export class ServerRamCacheLedger {
  private entries: Held[] = [];
  private bigStarts = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** The server cleared this big content into its RAM cache before the proxy saved it. */
  note(content: SlotContent): void {
    if (!content.big || content.saved) return;
    const others = this.entries.filter((e) => e.content.key !== content.key);
    this.entries = [{ content, notedAt: this.now(), bigStartsAtNote: this.bigStarts }, ...others].slice(0, MAX_ENTRIES);
  }

  /** A task starts on the backend; a big one pushes its slot's conversation into the RAM cache when it ends. */
  noteTaskStart(big: boolean): void {
    if (big) this.bigStarts++;
  }

  /**
   * The trusted entry this request continues (same model, its blocks a prefix of the request's), the longest; it is
   * taken out of the ledger (the request brings it back into a slot).
   */
  takeContinuedBy(model: string, blocks: readonly string[]): SlotContent | undefined {
    this.entries = this.entries.filter((e) => this.trusted(e));
    const found = this.entries
      .filter((e) => e.content.model === model && continuesBlocks(e.content.blocks, blocks))
      .sort((a, b) => b.content.blocks.length - a.content.blocks.length)[0];
    if (found) this.entries = this.entries.filter((e) => e !== found);
    return found?.content;
  }

  /** The server restarted, or showed that its cache no longer held an entry: trust none of them. */
  clear(): void {
    this.entries = [];
  }

  private trusted(entry: Held): boolean {
    return this.bigStarts - entry.bigStartsAtNote <= TRUSTED_BIG_STARTS && this.now() - entry.notedAt <= TRUSTED_MS;
  }
}
