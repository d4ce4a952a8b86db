/**
 * Whether META_DIR and CACHE_DIR agree, judged from the files alone (not through the proxy's code): every meta
 * names a cache file that exists with the size the meta recorded, and nothing half-written is left in META_DIR.
 * Cache files without a meta are listed apart: they waste disk but are never offered for a restore.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

const META_SUFFIX = '.meta.json';
/** The proxy's keys: SHA-256 hex digests. */
const KEY = /^[0-9a-f]{64}$/;

export interface Consistency {
  /** Meta files in META_DIR. */
  metas: number;
  /** Regular files in CACHE_DIR. */
  cacheFiles: number;
  /** Metas whose cache file does not exist. */
  missingFiles: string[];
  /** Metas whose `file_bytes` differs from the file's size (a partial or rewritten file). */
  sizeMismatches: Array<{ key: string; metaBytes: number; fileBytes: number }>;
  /** Metas that are not valid JSON or name another key than their file name. */
  badMetas: string[];
  /** Anything else in META_DIR: `.corrupt` files set aside at start-up, temp files of interrupted writes. */
  otherMetaDirFiles: string[];
  /** Key-named cache files with no meta (an interrupted or failed save). */
  orphanFiles: string[];
  /** Cache files whose name is not a key: nobody but a client could have chosen that name. */
  foreignFiles: string[];
}

/** True when no meta points at a missing, partial or unreadable file and META_DIR holds nothing else. */
export function isConsistent(c: Consistency): boolean {
  return (
    c.missingFiles.length === 0 &&
    c.sizeMismatches.length === 0 &&
    c.badMetas.length === 0 &&
    c.otherMetaDirFiles.length === 0
  );
}

export async function checkConsistency(metaDir: string, cacheDir: string): Promise<Consistency> {
  const metaNames = await readdir(metaDir).catch(() => [] as string[]);
  const cacheSizes = new Map<string, number>();
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    const s = await stat(join(cacheDir, name)).catch(() => undefined);
    if (s?.isFile()) cacheSizes.set(name, s.size);
  }
  const result: Consistency = {
    metas: 0,
    cacheFiles: cacheSizes.size,
    missingFiles: [],
    sizeMismatches: [],
    badMetas: [],
    otherMetaDirFiles: [],
    orphanFiles: [],
    foreignFiles: [],
  };
  const described = new Set<string>();
  for (const name of metaNames) {
    const key = name.endsWith(META_SUFFIX) ? name.slice(0, -META_SUFFIX.length) : undefined;
    if (key === undefined || !KEY.test(key)) {
      result.otherMetaDirFiles.push(name);
      continue;
    }
    result.metas++;
    described.add(key);
    const meta = await readMeta(join(metaDir, name));
    if (!meta || meta.key !== key) {
      result.badMetas.push(name);
      continue;
    }
    const size = cacheSizes.get(key);
    if (size === undefined) result.missingFiles.push(key);
    else if (typeof meta.file_bytes === 'number' && meta.file_bytes !== size) {
      result.sizeMismatches.push({ key, metaBytes: meta.file_bytes, fileBytes: size });
    }
  }
  for (const name of cacheSizes.keys()) {
    if (!KEY.test(name)) result.foreignFiles.push(name);
    else if (!described.has(name)) result.orphanFiles.push(name);
  }
  return result;
}

async function readMeta(path: string): Promise<{ key?: unknown; file_bytes?: unknown } | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown;
    return parsed !== null && typeof parsed === 'object'
      ? (parsed as { key?: unknown; file_bytes?: unknown })
      : undefined;
  } catch {
    return undefined;
  }
}
