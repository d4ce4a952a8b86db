/**
 * The meta files on disk (META_DIR). Read once at start-up into the prefix index; afterwards only written and
 * removed, never scanned on the request path.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  assertSafeKey,
  keyFromMetaFileName,
  META_SUFFIX,
  metaFileName,
  parseMeta,
  serializeMeta,
} from './meta-file.js';
import type { CacheMeta } from './meta-file.js';

/** A meta file that could not be used, and why. */
export interface MetaProblem {
  file: string;
  reason: string;
}

export interface MetaStore {
  readonly dir: string;
  /**
   * Creates the directory if missing and reads every `{key}.meta.json`. A file that is unreadable, not JSON,
   * invalid, or whose `key` differs from its name is reported in `problems` and renamed to
   * `*.meta.json.corrupt`, so it is kept for inspection but not read again. Stale temp files of crashed writes
   * (older than an hour) are removed. Order of `metas` is unspecified.
   */
  loadAll(): Promise<{ metas: CacheMeta[]; problems: MetaProblem[] }>;
  /** Validates and writes atomically (temp file in the same directory, fsync, rename) in the seed's format. */
  write(meta: CacheMeta): Promise<void>;
  /** Deletes the key's meta file; a missing file is fine. Throws for an unsafe key. */
  remove(key: string): Promise<void>;
}

const CORRUPT_SUFFIX = '.corrupt';
const TMP_SUFFIX = '.tmp';
const STALE_TMP_MS = 60 * 60 * 1000;
// Enough parallel reads to hide disk latency without exhausting file descriptors on a big META_DIR.
const READ_CONCURRENCY = 32;

/** A MetaStore over `dir`. */
export function createMetaStore(dir: string): MetaStore {
  async function loadOne(name: string, problems: MetaProblem[]): Promise<CacheMeta | undefined> {
    const file = join(dir, name);
    try {
      const meta = parseMeta(JSON.parse(await readFile(file, 'utf8')));
      if (meta.key !== keyFromMetaFileName(name)) throw new Error(`key ${meta.key} does not match the file name`);
      return meta;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // removed while we listed
      const reason = err instanceof Error ? err.message : String(err);
      const renamed = await rename(file, file + CORRUPT_SUFFIX).then(
        () => '',
        (e: Error) => `; could not rename it: ${e.message}`,
      );
      problems.push({ file, reason: reason + renamed });
      return undefined;
    }
  }

  async function removeStaleTemp(name: string): Promise<void> {
    const file = join(dir, name);
    try {
      if (Date.now() - (await stat(file)).mtimeMs > STALE_TMP_MS) await unlink(file);
    } catch {
      // Another writer may have renamed or removed it meanwhile; nothing to clean then.
    }
  }

  return {
    dir,

    async loadAll() {
      await mkdir(dir, { recursive: true });
      const names = await readdir(dir);
      const metas: CacheMeta[] = [];
      const problems: MetaProblem[] = [];
      const metaNames = names.filter((n) => n.endsWith(META_SUFFIX) && !n.startsWith('.'));
      for (let i = 0; i < metaNames.length; i += READ_CONCURRENCY) {
        const batch = metaNames.slice(i, i + READ_CONCURRENCY).map((n) => loadOne(n, problems));
        for (const meta of await Promise.all(batch)) if (meta) metas.push(meta);
      }
      await Promise.all(names.filter(isTempName).map(removeStaleTemp));
      return { metas, problems };
    },

    async write(meta) {
      const name = metaFileName(parseMeta(meta).key);
      const data = serializeMeta(meta);
      try {
        await writeAtomic(dir, name, data);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // META_DIR was removed under us (e.g. by an operator); recreate it rather than lose the meta.
        await mkdir(dir, { recursive: true });
        await writeAtomic(dir, name, data);
      }
    },

    async remove(key) {
      try {
        await unlink(join(dir, metaFileName(assertSafeKey(key))));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    },
  };
}

// Temp names start with a dot so that neither we nor the seed's glob("*.meta.json") ever reads a half-written file.
function tempName(name: string): string {
  return `.${name}.${process.pid}.${randomBytes(6).toString('hex')}${TMP_SUFFIX}`;
}

function isTempName(name: string): boolean {
  return name.startsWith('.') && name.includes(META_SUFFIX + '.') && name.endsWith(TMP_SUFFIX);
}

async function writeAtomic(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(dir, tempName(name));
  const handle = await open(tmp, 'wx');
  try {
    await handle.writeFile(data, 'utf8');
    // Flush before the rename so a crash cannot leave a complete-looking name over empty content.
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, join(dir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
