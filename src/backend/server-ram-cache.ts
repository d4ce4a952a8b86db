/**
 * A model of what the server's own RAM cache (`--cache-ram`) holds, so that the proxy can act as the disk tier
 * behind it.
 *
 * On a backend that clears idle slots (llama-server's default configuration) each task start moves every idle slot's
 * content into the RAM cache, and a task sent without a pin gets it back from there within the server's own
 * iteration, whereas a restore from disk is a slot action of its own (one more iteration, behind other clients'
 * prefill batches). A task pinned to a cleared slot skips that lookup. On one that keeps them (`-np N`), a task
 * pinned to a slot holding another prompt moves that prompt there and loads its own (see pinned-ram-tier.ts).
 *
 * The server shows neither the cache's size nor its contents (`/props`, `/slots` and `/metrics` do not), so the
 * model follows the same steps as llama-server's `server_prompt_cache` with the size the operator declares
 * (SERVER_CACHE_RAM_MIB, llama-server's default 8192 MiB), in bytes learned from the proxy's own saves:
 * - a cleared (or pushed out) content enters as the newest entry, and entries it continues leave (they are contained
 *   in it);
 * - the oldest entries leave while the total exceeds the limit (one entry always stays);
 * - an entry a task loads leaves the cache (the slot holds it now).
 * Other clients' contents are not seen, so the model may believe too much: a request sent for an entry the cache no
 * longer had (a miss) lowers the believed limit to what was newer than that entry.
 */
import { continuesBlocks, lcpBlocks } from '../prompt/block-match.js';
import type { SlotContent } from '../slots/slot-state.js';

/** An entry the model believes the server's RAM cache holds. */
interface Held {
  content: SlotContent;
  tokens: number;
  notedAt: number;
  /** A copy the server may have made (an idle slot's, see noteCopy): it takes room, but no request counts on it. */
  copy?: true;
}

/** What a request may ask the server's RAM cache for. */
export interface RamCacheHit {
  content: SlotContent;
  /**
   * The model knows the entry is still held (its size and the limit are known), rather than only that it went
   * there: only then is it worth more than a sure restore from disk.
   */
  sure: boolean;
  /** Modelled bytes of the entries newer than this one when it was taken: the limit a miss proves too high. */
  newerBytes: number;
}

/** Long after its note an entry is taken as gone (the server may have slept, or been restarted unseen). */
const KEPT_MS = 30 * 60_000;
/** The model fills the declared limit only to this share: entries carry the server's overheads, and others' prompts. */
const LIMIT_SHARE = 0.9;

export class ServerRamCacheLedger {
  /** Oldest first, as the server evicts. */
  private entries: Held[] = [];
  /** Bytes per token of each model's state, from the proxy's saves (`n_written` / `n_saved`). */
  private readonly bytesPerToken = new Map<string, number>();
  private limitBytes: number;

  /** @param limitMiB the server's `--cache-ram` as declared (-1: no limit, 0: off) */
  constructor(
    limitMiB: number,
    private readonly now: () => number = Date.now,
  ) {
    this.limitBytes = limitMiB < 0 ? Infinity : limitMiB * 2 ** 20;
  }

  /** The limit the model now works with, in MiB (Infinity: none): declared, or lowered by a miss. */
  get limitMiB(): number {
    return this.limitBytes / 2 ** 20;
  }

  /** A save wrote `bytes` for `tokens` tokens of `model`: the size of its state, which the RAM cache stores too. */
  learnTokenSize(model: string, tokens: number, bytes: number): void {
    if (tokens > 0 && bytes > 0) this.bytesPerToken.set(model, bytes / tokens);
  }

  /** The server moved this content into its RAM cache (a task start cleared its slot, or took it). */
  note(content: SlotContent): void {
    this.add(content, false);
  }

  /**
   * The server may have copied this content into its RAM cache while its slot keeps it (an idle slot at a task start,
   * with `--cache-idle-slots`, on by default, which the proxy cannot see): it counts against the limit, pushing older
   * entries out of the model, but is never found, so a server run without that flag costs a restore, never a miss.
   */
  noteCopy(content: SlotContent): void {
    this.add(content, true);
  }

  private add(content: SlotContent, copy: boolean): void {
    const tokens = content.nTokens ?? 0;
    if (this.limitBytes === 0 || tokens === 0) return;
    this.entries = this.entries.filter(
      (e) =>
        e.content.key !== content.key &&
        !(e.content.model === content.model && continuesBlocks(e.content.blocks, content.blocks)),
    );
    this.entries.push({ content, tokens, notedAt: this.now(), ...(copy && { copy }) });
    this.evict();
  }

  /**
   * The longest big entry this request continues (same model, its blocks a prefix of the request's), or undefined.
   * `incomingTokens`: what the request's own launch will move into the cache first (the other idle slots' contents),
   * which may push the entry out before the server looks it up. It stays in the model until `take`.
   */
  find(model: string, blocks: readonly string[], incomingTokens = 0): RamCacheHit | undefined {
    this.entries = this.entries.filter((e) => this.now() - e.notedAt <= KEPT_MS);
    const candidates = this.entries.filter(
      (e) =>
        !e.copy &&
        e.content.big &&
        e.content.model === model &&
        lcpBlocks(e.content.blocks, blocks) > 0 &&
        continuesBlocks(e.content.blocks, blocks),
    );
    const found = candidates.sort((a, b) => b.content.blocks.length - a.content.blocks.length)[0];
    if (!found) return undefined;
    const perToken = this.bytesPerToken.get(model);
    const newer = this.entries.slice(this.entries.indexOf(found) + 1);
    const newerBytes = newer.reduce((sum, e) => sum + (this.bytesOf(e) ?? 0), incomingTokens * (perToken ?? 0));
    const fits = perToken !== undefined && newerBytes + found.tokens * perToken <= this.limitBytes * LIMIT_SHARE;
    return { content: found.content, sure: this.limitBytes === Infinity || fits, newerBytes };
  }

  /**
   * Whether a content of `model` and `tokens` moved into the cache now would stay there a good while: the size of a
   * token is known, and the modelled entries with this one fill at most half of the limit.
   */
  hasRoom(model: string, tokens: number): boolean {
    const perToken = this.bytesPerToken.get(model);
    if (this.limitBytes === 0 || perToken === undefined) return false;
    const total = this.entries.reduce((sum, e) => sum + (this.bytesOf(e) ?? 0), tokens * perToken);
    return total <= (this.limitBytes * LIMIT_SHARE) / 2;
  }

  /** A task is sent for this entry: the server loads it into a slot and drops it from its cache. */
  take(content: SlotContent): void {
    this.entries = this.entries.filter((e) => e.content !== content);
  }

  /**
   * The server no longer held an entry the model was sure of: the real limit is below what was newer than it plus
   * itself. The model takes the newer entries' size as its limit from now on (never raised again: a lost restore
   * costs far less than a miss). A miss of an entry whose size the model did not know yet proves nothing of the limit.
   */
  noteMiss(hit: RamCacheHit): void {
    if (!hit.sure) return;
    this.limitBytes = Math.min(this.limitBytes, hit.newerBytes / LIMIT_SHARE);
    this.evict();
  }

  /** The server restarted: its RAM cache is gone. */
  clear(): void {
    this.entries = [];
  }

  /** Behind llama-swap or a router each model runs a server of its own: an unloaded one's cache went with it. */
  keepModels(loaded: ReadonlySet<string>): void {
    this.entries = this.entries.filter((e) => loaded.has(e.content.model));
  }

  private bytesOf(entry: Held): number | undefined {
    const perToken = this.bytesPerToken.get(entry.content.model);
    return perToken === undefined ? undefined : entry.tokens * perToken;
  }

  /** Oldest first while the modelled size exceeds the limit; one entry always stays, as on the server. */
  private evict(): void {
    const budget = this.limitBytes * LIMIT_SHARE;
    let total = this.entries.reduce((sum, e) => sum + (this.bytesOf(e) ?? 0), 0);
    while (this.entries.length > 1 && total > budget) total -= this.bytesOf(this.entries.shift()!) ?? 0;
  }
}
