/**
 * The periodic budget keeper for CACHE_DIR (llama-server's --slot-save-path): reconciles the directory with the
 * index (entries whose file is gone, key-named files no entry describes), deletes cache files by age, then oldest
 * first until the total fits, and drops the matching index entries and meta files so the index never offers a file
 * that is gone.
 */
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheMeta } from '../cache/meta-file.js';
import { isSafeKey, META_SUFFIX } from '../cache/meta-file.js';
import type { PrefixIndex } from '../cache/prefix-index.js';
import { entriesWithoutFile, unindexedFiles } from './reconcile.js';
import type { CacheFile } from './reconcile.js';

export interface CacheCleanupOptions {
  /** Empty = cleanup disabled. */
  cacheDir: string;
  /** Delete files whose mtime is older than this; 0 = no age limit. */
  maxAgeHours: number;
  /** Keep the total under maxSizeGb × 1024³ bytes; 0 = no size limit (the seed would delete everything). */
  maxSizeGb: number;
  /** Period of `start()`; ≤ 0 = run once at start only. */
  intervalMinutes: number;
  index: PrefixIndex;
  metaStore: { remove(key: string): Promise<void> };
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** Milliseconds since the epoch; defaults to Date.now. */
  now?: () => number;
  /** A key-named file with no index entry is deleted once unmodified this long (default UNINDEXED_GRACE_MS). */
  unindexedGraceMs?: number;
  /** Told the stats of every run that looked at the directory (the metrics). Must not throw. */
  onRun?: (stats: CleanupStats) => void;
}

/** Far longer than any save takes to write its file and record its entry. */
const UNINDEXED_GRACE_MS = 60 * 60_000;

export interface CleanupStats {
  deletedByAge: number;
  deletedBySize: number;
  freedBytes: number;
  /** Total size of the cache files left, pinned ones included. */
  remainingBytes: number;
  /** Number of cache files left. */
  remainingFiles: number;
  /** Files that were due for deletion but pinned (a slot is restoring or saving them). */
  skippedPinned: number;
  /** Entries dropped (with their meta) because their file is gone from cacheDir. */
  droppedMissing: number;
  /** Key-named files deleted because no entry describes them (their meta write failed or was lost). */
  deletedUnindexed: number;
  /**
   * Entries with no file in cacheDir that were kept: no file of their backend and model is there, so theirs may
   * live on another disk.
   */
  orphanEntries: number;
  /** Set when the run did nothing because cacheDir is unset or missing. */
  skipped?: string;
}

export interface CacheCleanup {
  /** One run; if a run is already in progress, returns that run's result instead of starting another. */
  runOnce(): Promise<CleanupStats>;
  /** Runs once now, then every intervalMinutes; the timer does not keep the process alive. Idempotent. */
  start(): void;
  /** Clears the timer and waits for a run in progress to finish. */
  stop(): Promise<void>;
}

// setInterval fires at once for delays above 2^31-1 ms; clamp instead of spinning.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Builds the cleanup job; nothing runs until `runOnce` or `start`. */
export function createCacheCleanup(opts: CacheCleanupOptions): CacheCleanup {
  const now = opts.now ?? Date.now;
  const unindexedGraceMs = opts.unindexedGraceMs ?? UNINDEXED_GRACE_MS;
  let running: Promise<CleanupStats> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let started = false;

  async function run(): Promise<CleanupStats> {
    const stats: CleanupStats = {
      deletedByAge: 0,
      deletedBySize: 0,
      freedBytes: 0,
      remainingBytes: 0,
      remainingFiles: 0,
      skippedPinned: 0,
      droppedMissing: 0,
      deletedUnindexed: 0,
      orphanEntries: 0,
    };
    const listed = opts.cacheDir ? await listCacheFiles(opts.cacheDir) : undefined;
    if (!listed) {
      stats.skipped = opts.cacheDir ? 'cache dir does not exist' : 'no cache dir configured';
      opts.log.info({ cacheDir: opts.cacheDir, reason: stats.skipped }, 'cache cleanup skipped');
      return stats;
    }
    const files = await reconcile(listed, stats);
    const maxAgeMs = opts.maxAgeHours > 0 ? opts.maxAgeHours * 3600_000 : Infinity;
    const kept: CacheFile[] = [];
    for (const file of files) {
      const due = now() - file.mtimeMs > maxAgeMs;
      if (due && (await remove(file, 'age', stats))) stats.deletedByAge++;
      else kept.push(file);
    }
    let total = kept.reduce((sum, f) => sum + f.size, 0);
    const maxBytes = opts.maxSizeGb > 0 ? opts.maxSizeGb * 1024 ** 3 : Infinity;
    if (total > maxBytes) {
      for (const file of [...kept].sort((a, b) => a.mtimeMs - b.mtimeMs)) {
        if (total <= maxBytes) break;
        if (await remove(file, 'size', stats)) {
          stats.deletedBySize++;
          total -= file.size;
        }
      }
    }
    stats.remainingBytes = total;
    stats.remainingFiles = kept.length - stats.deletedBySize;
    opts.log.info({ ...stats, cacheDir: opts.cacheDir }, 'cache cleanup done');
    opts.onRun?.(stats);
    return stats;
  }

  /**
   * Entries whose file is gone are dropped; key-named files without an entry are deleted once past the grace.
   * Returns the listed files that are still there.
   */
  async function reconcile(files: CacheFile[], stats: CleanupStats): Promise<CacheFile[]> {
    const { gone, elsewhere } = entriesWithoutFile(opts.index.entries(), new Set(files.map((f) => f.name)));
    stats.orphanEntries = elsewhere;
    for (const meta of gone) if (await dropIfFileGone(meta)) stats.droppedMissing++;
    const deleted = new Set<string>();
    for (const file of unindexedFiles(files, (key) => opts.index.get(key) !== undefined, now(), unindexedGraceMs)) {
      // Checked again just before the unlink: a save of this key may have recorded its entry meanwhile.
      if (
        await remove(file, 'unindexed', stats, {
          stillDue: () => opts.index.get(file.name) === undefined,
          dropEntry: false,
        })
      ) {
        stats.deletedUnindexed++;
        deleted.add(file.name);
      }
    }
    return files.filter((f) => !deleted.has(f.name));
  }

  /** Drop the entry unless its file has appeared since the listing, or a save or restore is using the key. */
  async function dropIfFileGone(meta: CacheMeta): Promise<boolean> {
    if (opts.index.isPinned(meta.key)) return false;
    try {
      await lstat(join(opts.cacheDir, meta.key));
      return false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
    // A save that re-created the key replaced the entry object; a pin means one is writing it now.
    if (opts.index.get(meta.key) !== meta || opts.index.isPinned(meta.key)) return false;
    await dropMeta(meta.key);
    opts.log.info(
      { key: meta.key, model: meta.model_id, backend: meta.backend },
      'cache entry dropped: its file is gone',
    );
    return true;
  }

  /**
   * Deletes one file unless pinned, changed since listing or no longer `stillDue`; true if it is gone. Its entry
   * and meta go too, unless `dropEntry` is false (a file that has none).
   */
  async function remove(
    file: CacheFile,
    reason: 'age' | 'size' | 'unindexed',
    stats: CleanupStats,
    { stillDue = () => true, dropEntry = true }: { stillDue?: () => boolean; dropEntry?: boolean } = {},
  ): Promise<boolean> {
    if (opts.index.isPinned(file.name)) {
      stats.skippedPinned++;
      return false;
    }
    const path = join(opts.cacheDir, file.name);
    try {
      // A save may have rewritten the file since we listed it; its fresh content is not what we judged.
      const current = await lstat(path);
      if (current.mtimeMs !== file.mtimeMs || current.size !== file.size) return false;
      if (opts.index.isPinned(file.name)) {
        stats.skippedPinned++;
        return false;
      }
      if (!stillDue()) return false;
      await unlink(path);
      stats.freedBytes += file.size;
      opts.log.info({ file: file.name, reason, bytes: file.size }, 'cache file deleted');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        opts.log.warn({ file: file.name, reason, err: String(err) }, 'cache file could not be deleted');
        return false;
      }
      // Already gone: still drop its index entry and meta below, but it freed nothing here.
    }
    if (dropEntry) await dropMeta(file.name);
    return true;
  }

  async function dropMeta(name: string): Promise<void> {
    if (!isSafeKey(name)) return;
    opts.index.remove(name);
    try {
      await opts.metaStore.remove(name);
    } catch (err) {
      opts.log.warn({ key: name, err: String(err) }, 'meta file could not be removed');
    }
  }

  function runOnce(): Promise<CleanupStats> {
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  }

  function runLogged(): void {
    runOnce().catch((err: unknown) => opts.log.warn({ err: String(err) }, 'cache cleanup failed'));
  }

  return {
    runOnce,
    start() {
      if (started) return;
      started = true;
      runLogged();
      if (opts.intervalMinutes > 0) {
        timer = setInterval(runLogged, Math.min(opts.intervalMinutes * 60_000, MAX_TIMER_MS));
        timer.unref();
      }
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      started = false;
      await running?.catch(() => undefined);
    },
  };
}

/** Regular files of dir (not our meta or temp files, in case META_DIR is the same directory); undefined if dir is missing. */
async function listCacheFiles(dir: string): Promise<CacheFile[] | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      return undefined;
    }
    throw err;
  }
  const files: CacheFile[] = [];
  for (const name of names) {
    if (name.endsWith(META_SUFFIX) || name.includes(META_SUFFIX + '.')) continue;
    try {
      const s = await lstat(join(dir, name));
      if (s.isFile()) files.push({ name, size: s.size, mtimeMs: s.mtimeMs });
    } catch {
      // Vanished between readdir and lstat: nothing to account for.
    }
  }
  return files;
}
