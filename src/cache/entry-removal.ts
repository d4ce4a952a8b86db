/**
 * Deleting one cache entry on an operator's request: its file in CACHE_DIR, its meta file and its index entry. The
 * key must be a safe basename (so no path outside the directories can be named) and indexed; an entry a save or
 * restore is using (pinned) is left alone. When the file cannot be deleted, nothing else is either, so the index
 * never forgets a file that is still there.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describeCause } from '../errors.js';
import { isSafeKey } from './meta-file.js';
import type { PrefixIndex } from './prefix-index.js';

export interface EntryRemovalDeps {
  index: Pick<PrefixIndex, 'get' | 'remove' | 'isPinned'>;
  metaStore: { remove(key: string): Promise<void> };
  /** CACHE_DIR; null: the file is not deleted (it lives on the backend's disk, out of reach). */
  cacheDir: string | null;
}

export type EntryRemoval =
  | { outcome: 'removed'; key: string; fileRemoved: boolean; metaRemoved: boolean; metaError?: string }
  | { outcome: 'invalid_key' | 'not_found' | 'in_use' }
  | { outcome: 'file_error'; error: string };

export async function removeEntry(deps: EntryRemovalDeps, key: string): Promise<EntryRemoval> {
  if (!isSafeKey(key)) return { outcome: 'invalid_key' };
  if (deps.index.get(key) === undefined) return { outcome: 'not_found' };
  if (deps.index.isPinned(key)) return { outcome: 'in_use' };
  let fileRemoved = false;
  if (deps.cacheDir !== null) {
    try {
      await unlink(join(deps.cacheDir, key));
      fileRemoved = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return { outcome: 'file_error', error: describeCause(err) };
    }
  }
  deps.index.remove(key);
  try {
    await deps.metaStore.remove(key);
    return { outcome: 'removed', key, fileRemoved, metaRemoved: true };
  } catch (err) {
    return { outcome: 'removed', key, fileRemoved, metaRemoved: false, metaError: describeCause(err) };
  }
}
