/**
 * What cleanup reconciles between CACHE_DIR and the index, decided without touching the disk: index entries whose
 * file is gone, and cache files that no entry describes (their meta write failed, or was lost with a crash). Only
 * files named like a cache key are ever considered; anything else in CACHE_DIR is not ours.
 */
import type { CacheMeta } from '../cache/meta-file.js';
import { groupKey } from '../backend/group-key.js';

/** A cache file as listed: basename, size and last modification. */
export interface CacheFile {
  name: string;
  size: number;
  mtimeMs: number;
}

/** A key is the SHA-256 hex of the prompt (the seed's and ours): the only names the proxy ever saves under. */
const KEY_NAME = /^[0-9a-f]{64}$/;

function isKeyName(name: string): boolean {
  return KEY_NAME.test(name);
}

/**
 * Entries with no file in the listing, split into those whose file should be there and those that may live on
 * another disk. A file is expected in CACHE_DIR when files of the same backend and model are there: other backends,
 * or behind llama-swap other models' servers, may save to another directory, and their entries are left alone.
 */
export function entriesWithoutFile(
  entries: Iterable<CacheMeta>,
  listed: ReadonlySet<string>,
): { gone: CacheMeta[]; elsewhere: number } {
  const all = [...entries];
  const savesHere = new Set(all.filter((meta) => listed.has(meta.key)).map(saverOf));
  const without = all.filter((meta) => !listed.has(meta.key));
  const gone = without.filter((meta) => savesHere.has(saverOf(meta)));
  return { gone, elsewhere: without.length - gone.length };
}

/**
 * Key-named files that no entry describes and that nobody has written for `graceMs`: a save in progress writes its
 * file before its entry exists, so a fresh file is never judged.
 */
export function unindexedFiles(
  files: readonly CacheFile[],
  indexed: (key: string) => boolean,
  now: number,
  graceMs: number,
): CacheFile[] {
  return files.filter((f) => isKeyName(f.name) && !indexed(f.name) && now - f.mtimeMs > graceMs);
}

/** Which server wrote the entry's file: its backend (absent in the Python proxy's metas) and model. */
function saverOf(meta: CacheMeta): string {
  return groupKey(meta.backend ?? '', meta.model_id);
}
