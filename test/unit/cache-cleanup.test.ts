import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CacheMeta } from '../../src/cache/meta-file.js';
import { createMetaStore } from '../../src/cache/meta-store.js';
import { PrefixIndex } from '../../src/cache/prefix-index.js';
import { createCacheCleanup } from '../../src/cleanup/cache-cleanup.js';
import type { CacheCleanupOptions } from '../../src/cleanup/cache-cleanup.js';

const NOW = Date.parse('2025-01-10T12:00:00Z');
const HOUR = 3600_000;
const GB = 1024 ** 3;

interface Fixture {
  cacheDir: string;
  metaDir: string;
  index: PrefixIndex;
  logs: { level: string; obj: object; msg?: string }[];
  /** A cache file of `size` bytes last modified `ageHours` before NOW, with its meta in the index and on disk. */
  addFile(key: string, size: number, ageHours: number): Promise<void>;
  cleanup(over?: Partial<CacheCleanupOptions>): ReturnType<typeof createCacheCleanup>;
  cacheFiles(): Promise<string[]>;
  metaFiles(): Promise<string[]>;
}

async function withFixture(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'proxycache-cleanup-'));
  const cacheDir = join(root, 'cache');
  const metaDir = join(root, 'meta');
  await mkdir(cacheDir);
  const metaStore = createMetaStore(metaDir);
  await metaStore.loadAll();
  const index = new PrefixIndex();
  const logs: Fixture['logs'] = [];
  const log = {
    info: (obj: object, msg?: string) => void logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg?: string) => void logs.push({ level: 'warn', obj, msg }),
  };
  const f: Fixture = {
    cacheDir,
    metaDir,
    index,
    logs,
    async addFile(key, size, ageHours) {
      const path = join(cacheDir, key);
      await writeFile(path, Buffer.alloc(size));
      const t = new Date(NOW - ageHours * HOUR);
      await utimes(path, t, t);
      const meta: CacheMeta = {
        key,
        model_id: 'm',
        prefix_len: 1,
        wpb: 100,
        blocks: [key],
        timestamp: t.getTime() / 1000,
      };
      index.add(meta);
      await metaStore.write(meta);
    },
    cleanup: (over = {}) =>
      createCacheCleanup({
        cacheDir,
        maxAgeHours: 0,
        maxSizeGb: 0,
        intervalMinutes: 60,
        index,
        metaStore,
        log,
        now: () => NOW,
        ...over,
      }),
    cacheFiles: async () => (await readdir(cacheDir)).sort(),
    metaFiles: async () => (await readdir(metaDir)).sort(),
  };
  try {
    await fn(f);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('deletes files older than maxAgeHours with their index entries and meta files', async () => {
  await withFixture(async (f) => {
    await f.addFile('old', 100, 10);
    await f.addFile('new', 200, 2);
    const stats = await f.cleanup({ maxAgeHours: 5 }).runOnce();
    assert.deepEqual(stats, {
      deletedByAge: 1,
      deletedBySize: 0,
      freedBytes: 100,
      remainingBytes: 200,
      remainingFiles: 1,
      skippedPinned: 0,
      droppedMissing: 0,
      deletedUnindexed: 0,
      orphanEntries: 0,
    });
    assert.deepEqual(await f.cacheFiles(), ['new']);
    assert.deepEqual(await f.metaFiles(), ['new.meta.json']);
    assert.equal(f.index.get('old'), undefined);
    assert.ok(f.index.get('new'));
  });
});

test('over the size limit: deletes oldest first until the total fits', async () => {
  await withFixture(async (f) => {
    await f.addFile('a', 1000, 4);
    await f.addFile('b', 1000, 3);
    await f.addFile('c', 1000, 2);
    await f.addFile('d', 1000, 1);
    const stats = await f.cleanup({ maxSizeGb: 2500 / GB }).runOnce();
    assert.equal(stats.deletedBySize, 2);
    assert.equal(stats.freedBytes, 2000);
    assert.equal(stats.remainingBytes, 2000);
    assert.deepEqual(await f.cacheFiles(), ['c', 'd']);
    assert.deepEqual(await f.metaFiles(), ['c.meta.json', 'd.meta.json']);
    assert.deepEqual([...f.index.entries()].map((m) => m.key).sort(), ['c', 'd']);
  });
});

test('age first, then size over what is left', async () => {
  await withFixture(async (f) => {
    await f.addFile('ancient', 5000, 100);
    await f.addFile('a', 1000, 3);
    await f.addFile('b', 1000, 2);
    const stats = await f.cleanup({ maxAgeHours: 24, maxSizeGb: 1500 / GB }).runOnce();
    assert.deepEqual([stats.deletedByAge, stats.deletedBySize, stats.freedBytes], [1, 1, 6000]);
    assert.deepEqual(await f.cacheFiles(), ['b']);
  });
});

test('pinned files are never deleted and still count towards the total', async () => {
  await withFixture(async (f) => {
    await f.addFile('pinned-old', 1000, 50);
    await f.addFile('x', 1000, 3);
    await f.addFile('y', 1000, 2);
    f.index.pin('pinned-old');
    const stats = await f.cleanup({ maxAgeHours: 24, maxSizeGb: 1500 / GB }).runOnce();
    // Age: pinned-old skipped. Size: 3000 > 1500, pinned-old skipped again, x deleted (2000), y deleted (1000).
    assert.equal(stats.skippedPinned, 2);
    assert.deepEqual([stats.deletedByAge, stats.deletedBySize, stats.remainingBytes], [0, 2, 1000]);
    assert.deepEqual(await f.cacheFiles(), ['pinned-old']);
    assert.ok(f.index.get('pinned-old'));
    assert.deepEqual(await f.metaFiles(), ['pinned-old.meta.json']);
  });
});

test('0 disables each limit', async () => {
  await withFixture(async (f) => {
    await f.addFile('ancient', 10_000, 10_000);
    const stats = await f.cleanup({ maxAgeHours: 0, maxSizeGb: 0 }).runOnce();
    assert.deepEqual([stats.deletedByAge, stats.deletedBySize, stats.remainingBytes], [0, 0, 10_000]);
    assert.deepEqual(await f.cacheFiles(), ['ancient']);
  });
});

test('unset or missing cache dir: skipped with one log line', async () => {
  await withFixture(async (f) => {
    for (const cacheDir of ['', join(f.cacheDir, 'missing')]) {
      f.logs.length = 0;
      const stats = await f.cleanup({ cacheDir, maxAgeHours: 1 }).runOnce();
      assert.ok(stats.skipped);
      assert.equal(stats.deletedByAge + stats.deletedBySize, 0);
      assert.equal(f.logs.length, 1);
      assert.equal(f.logs[0]!.msg, 'cache cleanup skipped');
    }
  });
});

test('meta files in the cache dir (META_DIR = CACHE_DIR) are not treated as cache files; entries that may live elsewhere are only counted', async () => {
  await withFixture(async (f) => {
    await writeFile(join(f.cacheDir, 'k.meta.json'), '{}');
    await writeFile(join(f.cacheDir, 'k.meta.json.corrupt'), '{');
    await f.addFile('present', 10, 1);
    // Another model: none of its files is in this directory, so its server may save elsewhere.
    f.index.add({ key: 'orphan', model_id: 'other', prefix_len: 1, wpb: 100, blocks: ['o'], timestamp: 1 });
    const stats = await f.cleanup({ maxSizeGb: 1 / GB }).runOnce();
    assert.equal(stats.deletedBySize, 1);
    assert.equal(stats.remainingBytes, 0);
    assert.equal(stats.orphanEntries, 1);
    assert.equal(stats.droppedMissing, 0);
    assert.ok(f.index.get('orphan'));
    assert.deepEqual(await f.cacheFiles(), ['k.meta.json', 'k.meta.json.corrupt']);
  });
});

test('runs never overlap: a second runOnce during a run gets the same result', async () => {
  await withFixture(async (f) => {
    await f.addFile('old', 100, 10);
    const cleanup = f.cleanup({ maxAgeHours: 1 });
    const [a, b] = await Promise.all([cleanup.runOnce(), cleanup.runOnce()]);
    assert.equal(a, b);
    assert.equal(a.deletedByAge, 1);
    const c = await cleanup.runOnce();
    assert.notEqual(c, a);
    assert.equal(c.deletedByAge, 0);
  });
});

test('start runs at once; stop clears the timer and waits for the run in progress', async () => {
  await withFixture(async (f) => {
    await f.addFile('old', 100, 10);
    const cleanup = f.cleanup({ maxAgeHours: 1, intervalMinutes: 60 });
    cleanup.start();
    cleanup.start(); // idempotent
    await cleanup.stop();
    assert.deepEqual(await f.cacheFiles(), []);
    assert.equal(f.logs.filter((l) => l.msg === 'cache cleanup done').length, 1);
  });
});

test('start repeats every intervalMinutes', async () => {
  await withFixture(async (f) => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const cleanup = f.cleanup({ maxAgeHours: 1, intervalMinutes: 30 });
      cleanup.start();
      assert.equal((await cleanup.runOnce()).deletedByAge, 0); // joins the first run
      await f.addFile('old', 100, 10);
      mock.timers.tick(30 * 60_000);
      await cleanup.stop(); // waits for the run the tick started
      assert.deepEqual(await f.cacheFiles(), []);
      assert.equal(f.logs.filter((l) => l.msg === 'cache cleanup done').length, 2);
    } finally {
      mock.timers.reset();
    }
  });
});

const KEY_A = 'a'.repeat(64);
const KEY_B = 'b'.repeat(64);
const KEY_C = 'c'.repeat(64);

test('an entry whose file is gone is dropped with its meta when its server saves here; others are kept and counted', async () => {
  await withFixture(async (f) => {
    await f.addFile(KEY_A, 10, 1);
    await f.addFile(KEY_B, 10, 1);
    await unlink(join(f.cacheDir, KEY_B)); // deleted by hand, or lost with the disk
    // Same backend (none given) but another model, with no file here at all: maybe another --slot-save-path.
    f.index.add({ key: KEY_C, model_id: 'elsewhere', prefix_len: 1, wpb: 100, blocks: ['c'], timestamp: 1 });
    const stats = await f.cleanup().runOnce();
    assert.equal(stats.droppedMissing, 1);
    assert.equal(stats.orphanEntries, 1);
    assert.equal(f.index.get(KEY_B), undefined);
    assert.deepEqual(await f.metaFiles(), [`${KEY_A}.meta.json`]);
    assert.ok(f.index.get(KEY_A));
    assert.ok(f.index.get(KEY_C));
    assert.ok(
      f.logs.some((l) => l.msg === 'cache entry dropped: its file is gone' && (l.obj as { key: string }).key === KEY_B),
    );
  });
});

test('an entry whose file is missing but whose key is pinned (a save is writing it) is kept', async () => {
  await withFixture(async (f) => {
    await f.addFile(KEY_A, 10, 1);
    await f.addFile(KEY_B, 10, 1);
    await unlink(join(f.cacheDir, KEY_B));
    f.index.pin(KEY_B);
    const stats = await f.cleanup().runOnce();
    assert.equal(stats.droppedMissing, 0);
    assert.ok(f.index.get(KEY_B));
  });
});

test('a key-named file no entry describes is deleted once past the grace; fresh, pinned and other files stay', async () => {
  await withFixture(async (f) => {
    const old = new Date(NOW - 2 * HOUR);
    const fresh = new Date(NOW - 10 * 60_000);
    const others = ['notes.txt', 'A'.repeat(64), 'a'.repeat(63), `${KEY_A}.bin`];
    for (const name of [KEY_A, KEY_B, KEY_C, ...others]) {
      await writeFile(join(f.cacheDir, name), Buffer.alloc(10));
      await utimes(join(f.cacheDir, name), name === KEY_B ? fresh : old, name === KEY_B ? fresh : old);
    }
    f.index.pin(KEY_C); // a save of this key is running
    const stats = await f.cleanup({ unindexedGraceMs: HOUR }).runOnce();
    assert.equal(stats.deletedUnindexed, 1);
    assert.equal(stats.freedBytes, 10);
    assert.deepEqual(await f.cacheFiles(), [KEY_B, KEY_C, ...others].sort());
    assert.ok(
      f.logs.some((l) => l.msg === 'cache file deleted' && (l.obj as { reason: string }).reason === 'unindexed'),
    );
  });
});

test('a key-named file with an entry (only in memory: its meta write failed) is never unindexed', async () => {
  await withFixture(async (f) => {
    await f.addFile(KEY_A, 10, 5);
    await rm(join(f.metaDir, `${KEY_A}.meta.json`));
    const stats = await f.cleanup({ unindexedGraceMs: HOUR }).runOnce();
    assert.equal(stats.deletedUnindexed, 0);
    assert.deepEqual(await f.cacheFiles(), [KEY_A]);
  });
});

test('the default grace is an hour', async () => {
  await withFixture(async (f) => {
    for (const [name, ageMin] of [
      [KEY_A, 50],
      [KEY_B, 70],
    ] as const) {
      await writeFile(join(f.cacheDir, name), Buffer.alloc(10));
      const t = new Date(NOW - ageMin * 60_000);
      await utimes(join(f.cacheDir, name), t, t);
    }
    await f.cleanup().runOnce();
    assert.deepEqual(await f.cacheFiles(), [KEY_A]);
  });
});
