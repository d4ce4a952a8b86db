/**
 * The in-memory index of saved prompt prefixes: the only thing the request path reads to decide whether a
 * cache file on disk is worth restoring. Kept in sync with META_DIR by whoever writes or deletes metas.
 */
import { lcpBlocks, lcpRatio } from '../prompt/block-match.js';
import type { CacheMeta } from './meta-file.js';

export interface PrefixQuery {
  model: string;
  wpb: number;
  blocks: readonly string[];
  /** Minimum ratio (the seed's LCP_TH). */
  lcpTh: number;
  /** Extra filter, e.g. "only entries whose file is on this backend". */
  accept?: (meta: CacheMeta) => boolean;
  /**
   * Among entries at or above the threshold: 'ratio' (the seed's rule, the default) or 'lcp' (the longest shared
   * prefix, so a conversation's latest turn beats an older turn that happens to match a whole number of blocks).
   */
  prefer?: 'ratio' | 'lcp';
}

export interface PrefixMatch {
  meta: CacheMeta;
  /** Number of equal leading block hashes. */
  lcp: number;
  /** `lcp / max(1, min(query blocks, meta blocks))`. */
  ratio: number;
}

// model → wpb → first block hash → key → meta. Only entries sharing the request's first block can have lcp ≥ 1,
// and lcp 0 never matches (see findBest), so a lookup touches only that bucket.
type Buckets = Map<string, Map<number, Map<string, Map<string, CacheMeta>>>>;

/**
 * Entries by key plus the lookup structure and pin counts. Metas are held by reference: do not mutate one after
 * `add`; call `add` again with a new object instead.
 */
export class PrefixIndex {
  #byKey = new Map<string, CacheMeta>();
  #buckets: Buckets = new Map();
  #pins = new Map<string, number>();

  /** Number of entries. */
  get size(): number {
    return this.#byKey.size;
  }

  /** Adds an entry, replacing any entry with the same key. */
  add(meta: CacheMeta): void {
    this.remove(meta.key);
    this.#byKey.set(meta.key, meta);
    const first = meta.blocks[0];
    if (first === undefined) return; // no blocks: can never match, kept only for get/entries/cleanup
    let byWpb = this.#buckets.get(meta.model_id);
    if (!byWpb) this.#buckets.set(meta.model_id, (byWpb = new Map()));
    let byFirst = byWpb.get(meta.wpb);
    if (!byFirst) byWpb.set(meta.wpb, (byFirst = new Map()));
    let bucket = byFirst.get(first);
    if (!bucket) byFirst.set(first, (bucket = new Map()));
    bucket.set(meta.key, meta);
  }

  /** Removes the entry and returns it (undefined when absent). Pins are not affected. */
  remove(key: string): CacheMeta | undefined {
    const meta = this.#byKey.get(key);
    if (!meta) return undefined;
    this.#byKey.delete(key);
    const first = meta.blocks[0];
    const byWpb = this.#buckets.get(meta.model_id);
    const byFirst = byWpb?.get(meta.wpb);
    const bucket = first === undefined ? undefined : byFirst?.get(first);
    if (bucket && byFirst && byWpb && first !== undefined) {
      bucket.delete(key);
      // Prune empty maps so a long-running proxy does not accumulate them.
      if (bucket.size === 0) byFirst.delete(first);
      if (byFirst.size === 0) byWpb.delete(meta.wpb);
      if (byWpb.size === 0) this.#buckets.delete(meta.model_id);
    }
    return meta;
  }

  get(key: string): CacheMeta | undefined {
    return this.#byKey.get(key);
  }

  /** All entries, in insertion order. */
  entries(): IterableIterator<CacheMeta> {
    return this.#byKey.values();
  }

  /**
   * The seed's restore rule: among entries with the same model and wpb (and passing `accept`), the highest
   * `ratio = lcp / max(1, min(len(query.blocks), len(meta.blocks)))` that is ≥ `lcpTh` and > 0 (the seed starts
   * its best ratio at 0 and only replaces on strictly greater, so an lcp of 0 never matches, even at lcpTh 0).
   * Ties: the seed keeps the first it scanned, and it scans newest file first; we prefer the newer `timestamp`,
   * then the longer lcp, then the smaller key, so the result is deterministic.
   */
  findBest(query: PrefixQuery): PrefixMatch | undefined {
    const first = query.blocks[0];
    if (first === undefined) return undefined;
    const bucket = this.#buckets.get(query.model)?.get(query.wpb)?.get(first);
    if (!bucket) return undefined;
    let best: PrefixMatch | undefined;
    for (const meta of bucket.values()) {
      if (query.accept && !query.accept(meta)) continue;
      const lcp = lcpBlocks(query.blocks, meta.blocks);
      const ratio = lcpRatio(lcp, query.blocks, meta.blocks);
      if (ratio < query.lcpTh) continue;
      if (!best || isBetter(ratio, lcp, meta, best, query.prefer ?? 'ratio')) best = { meta, lcp, ratio };
    }
    return best;
  }

  /** Marks the key's file as in use (refcounted), so cleanup leaves it alone. The key need not be indexed. */
  pin(key: string): void {
    this.#pins.set(key, (this.#pins.get(key) ?? 0) + 1);
  }

  /** Releases one pin; extra unpins are ignored. */
  unpin(key: string): void {
    const n = this.#pins.get(key) ?? 0;
    if (n <= 1) this.#pins.delete(key);
    else this.#pins.set(key, n - 1);
  }

  isPinned(key: string): boolean {
    return this.#pins.has(key);
  }
}

function isBetter(ratio: number, lcp: number, meta: CacheMeta, best: PrefixMatch, prefer: 'ratio' | 'lcp'): boolean {
  if (prefer === 'lcp' && lcp !== best.lcp) return lcp > best.lcp;
  if (ratio !== best.ratio) return ratio > best.ratio;
  if (meta.timestamp !== best.meta.timestamp) return meta.timestamp > best.meta.timestamp;
  if (lcp !== best.lcp) return lcp > best.lcp;
  return meta.key < best.meta.key;
}
