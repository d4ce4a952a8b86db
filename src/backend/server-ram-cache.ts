/**
 * Conversations the server moved into its own RAM cache before the proxy could save them to disk at all.
 *
 * On a backend that clears idle slots (llama-server's default configuration), a task start clears every idle slot
 * into the server's RAM cache. The proxy saves what it knows of before each of its launches, but a task that ends
 * unforeseen (an end-of-generation token, a stop string) during the server's iteration before a launch, or any task
 * start by another client, clears a slot the proxy could not save. When disk has nothing of that conversation, its
 * next turn would prefill from scratch; sent without a pin, the server's own lookup may bring the whole
 * conversation back from its RAM cache (a request pinned to a cleared slot skips that lookup).
 *
 * The RAM cache is bounded (`--cache-ram`) and evicts by itself, and the proxy cannot see what it holds, so this is
 * tried only where a miss costs nothing more than the cold prefill the turn faces anyway (see leavePlacementToServer).
 */
import { continuesBlocks, lcpBlocks } from '../prompt/block-match.js';
import type { SlotContent } from '../slots/slot-state.js';

interface Held {
  content: SlotContent;
  notedAt: number;
}

/** Long after its note an entry is surely gone from the RAM cache: no point in keeping it. */
const KEPT_MS = 10 * 60_000;
const MAX_ENTRIES = 16;

export class ServerRamCacheLedger {
  private entries: Held[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** The server cleared this big content into its RAM cache before the proxy saved it. */
  note(content: SlotContent): void {
    if (!content.big || content.saved) return;
    const others = this.entries.filter((e) => e.content.key !== content.key);
    this.entries = [{ content, notedAt: this.now() }, ...others].slice(0, MAX_ENTRIES);
  }

  /**
   * The entry this request continues (same model, its blocks a prefix of the request's), the longest; it is taken
   * out of the ledger (the request brings it back into a slot, or finds it gone).
   */
  takeContinuedBy(model: string, blocks: readonly string[]): SlotContent | undefined {
    this.entries = this.entries.filter((e) => this.now() - e.notedAt <= KEPT_MS);
    const found = this.entries
      .filter(
        (e) =>
          e.content.model === model &&
          lcpBlocks(e.content.blocks, blocks) > 0 &&
          continuesBlocks(e.content.blocks, blocks),
      )
      .sort((a, b) => b.content.blocks.length - a.content.blocks.length)[0];
    if (found) this.entries = this.entries.filter((e) => e !== found);
    return found?.content;
  }

  /** The server restarted: its RAM cache is gone. */
  clear(): void {
    this.entries = [];
  }
}
