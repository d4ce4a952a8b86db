import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildMeta,
  isSafeKey,
  MetaFormatError,
  metaFileName,
  parseMeta,
  serializeMeta,
} from '../../src/cache/meta-file.js';
import type { CacheMeta } from '../../src/cache/meta-file.js';
import { createMetaStore } from '../../src/cache/meta-store.js';

// Exactly what the seed's json.dump(meta, f, indent=2, ensure_ascii=False) wrote (captured from CPython 3.11).
const PYTHON_META =
  '{\n  "key": "ab12",\n  "model_id": "qwen3-Straße-東京",\n  "prefix_len": 218,\n  "wpb": 100,\n  "blocks": [\n' +
  '    "96e599283d2467cc793bbd97eb1a5b0580c3a2a1583166b72988d578c3b1df29",\n' +
  '    "38372d0249815e9479b2467d73ad5967bb26790dc05287626d7c76910405dd5e"\n  ],\n  "timestamp": 1732615000.123456\n}';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'proxycache-meta-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const sample = (over: Partial<CacheMeta> = {}): CacheMeta => ({
  key: 'k1',
  model_id: 'm',
  prefix_len: 5,
  wpb: 100,
  blocks: ['aa', 'bb'],
  timestamp: 1732615000.5,
  ...over,
});

test('a meta written by the Python proxy is read as is', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'ab12.meta.json'), PYTHON_META);
    const { metas, problems } = await createMetaStore(dir).loadAll();
    assert.deepEqual(problems, []);
    assert.equal(metas.length, 1);
    assert.equal(metas[0]!.model_id, 'qwen3-Straße-東京');
    assert.equal(metas[0]!.timestamp, 1732615000.123456);
    assert.equal(metas[0]!.backend, undefined);
  });
});

test('our serialisation is byte-identical to the seed json.dump', () => {
  assert.equal(serializeMeta(parseMeta(JSON.parse(PYTHON_META))), PYTHON_META);
  const empty = { ...JSON.parse(PYTHON_META), blocks: [] };
  assert.equal(serializeMeta(parseMeta(empty)), PYTHON_META.replace(/"blocks": \[[^\]]*\]/, '"blocks": []'));
});

test('write then loadAll round-trips, extra fields included; remove deletes, a missing file is fine', async () => {
  await withDir(async (dir) => {
    const store = createMetaStore(join(dir, 'nested', 'meta')); // loadAll creates the directory
    assert.deepEqual(await store.loadAll(), { metas: [], problems: [] });
    const m = {
      ...sample({ backend: 'http://127.0.0.1:8080', n_tokens: 12, file_bytes: 345, fingerprint: 'f' }),
      extra: { x: 1 },
    };
    await store.write(m);
    const { metas } = await store.loadAll();
    assert.deepEqual(metas, [m]);
    const text = await readFile(join(store.dir, 'k1.meta.json'), 'utf8');
    assert.ok(text.startsWith('{\n  "key": "k1",\n  "model_id": "m",'), text);
    await store.remove('k1');
    await store.remove('k1');
    assert.deepEqual(await readdir(store.dir), []);
  });
});

test('atomic write leaves no temp files and overwrites in place', async () => {
  await withDir(async (dir) => {
    const store = createMetaStore(dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.write(sample({ timestamp: i }))));
    assert.deepEqual(await readdir(dir), ['k1.meta.json']);
    const { metas } = await store.loadAll();
    assert.equal(metas.length, 1);
  });
});

test('write recreates a META_DIR removed under it', async () => {
  await withDir(async (dir) => {
    const store = createMetaStore(join(dir, 'meta'));
    await store.loadAll();
    await rm(store.dir, { recursive: true });
    await store.write(sample());
    assert.deepEqual(await readdir(store.dir), ['k1.meta.json']);
  });
});

test('corrupt, invalid and misnamed metas are reported and renamed to .corrupt, not re-read', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'bad-json.meta.json'), '{"key": "bad-json", ');
    await writeFile(join(dir, 'bad-field.meta.json'), JSON.stringify(sample({ key: 'bad-field', wpb: 0 })));
    await writeFile(join(dir, 'misnamed.meta.json'), JSON.stringify(sample({ key: 'other' })));
    await writeFile(join(dir, 'good.meta.json'), JSON.stringify(sample({ key: 'good' })));
    await writeFile(join(dir, 'unrelated.txt'), 'ignored');
    const store = createMetaStore(dir);
    const { metas, problems } = await store.loadAll();
    assert.deepEqual(
      metas.map((m) => m.key),
      ['good'],
    );
    assert.deepEqual(
      problems.map((p) => p.file).sort(),
      ['bad-field', 'bad-json', 'misnamed'].map((n) => join(dir, `${n}.meta.json`)),
    );
    assert.match(problems.find((p) => p.file.includes('bad-field'))!.reason, /wpb must be a positive integer/);
    assert.deepEqual((await readdir(dir)).sort(), [
      'bad-field.meta.json.corrupt',
      'bad-json.meta.json.corrupt',
      'good.meta.json',
      'misnamed.meta.json.corrupt',
      'unrelated.txt',
    ]);
    assert.deepEqual(await store.loadAll(), { metas: [metas[0]!], problems: [] });
  });
});

test('loadAll removes stale temp files of crashed writes but keeps fresh ones', async () => {
  await withDir(async (dir) => {
    const stale = join(dir, '.k1.meta.json.123.abcdef.tmp');
    const fresh = join(dir, '.k2.meta.json.123.abcdef.tmp');
    await writeFile(stale, '{');
    await writeFile(fresh, '{');
    const old = new Date(Date.now() - 2 * 3600_000);
    await utimes(stale, old, old);
    const { problems } = await createMetaStore(dir).loadAll();
    assert.deepEqual(problems, []);
    assert.deepEqual(await readdir(dir), ['.k2.meta.json.123.abcdef.tmp']);
  });
});

test('unsafe keys are refused before touching the disk', async () => {
  for (const key of ['', '.', '..', '../x', 'a/b', 'a\\b', '.hidden', 'a..b', 'x\0', 'a'.repeat(201), 'sp ace']) {
    assert.equal(isSafeKey(key), false, key);
    assert.throws(() => metaFileName(key), MetaFormatError);
  }
  assert.equal(isSafeKey('cbadb3de4664b8d3ee7872f662ebe1a0187d98da0cc2682495a5e8ce910ac685'), true);
  assert.equal(isSafeKey('slotcache_abc.bin'), true);
  await withDir(async (dir) => {
    const store = createMetaStore(dir);
    await assert.rejects(store.remove('../etc'), MetaFormatError);
    await assert.rejects(store.write(sample({ key: '../evil' })), MetaFormatError);
    assert.deepEqual(await readdir(dir), []);
  });
});

test('parseMeta names the bad field', () => {
  assert.throws(() => parseMeta([]), MetaFormatError);
  assert.throws(() => parseMeta({ ...sample(), blocks: 'x' }), /blocks must be/);
  assert.throws(() => parseMeta({ ...sample(), timestamp: '1' }), /timestamp must be/);
  assert.throws(() => parseMeta({ ...sample(), prefix_len: -1 }), /prefix_len must be/);
  assert.throws(() => parseMeta({ ...sample(), backend: 1 }), /backend must be a string/);
  assert.throws(
    () => parseMeta({ ...sample(), model_id: null }),
    (e: unknown) => e instanceof MetaFormatError && e.field === 'model_id',
  );
});

test('buildMeta writes the seed fields, omits unset optional ones, and passes its own validation', () => {
  const m = buildMeta({
    key: 'k',
    model: 'm',
    prefixLen: 3,
    blocks: ['x'],
    wpb: 100,
    timestamp: 1.5,
    backend: undefined,
    n_tokens: undefined,
  });
  assert.deepEqual(m, { key: 'k', model_id: 'm', prefix_len: 3, wpb: 100, blocks: ['x'], timestamp: 1.5 });
  assert.deepEqual(parseMeta(JSON.parse(serializeMeta(m))), m);
  const now = buildMeta({
    key: 'k',
    model: 'm',
    prefixLen: 0,
    blocks: [],
    wpb: 1,
    backend: 'http://b',
    n_tokens: 7,
    fingerprint: 'f',
  });
  assert.ok(Math.abs(now.timestamp - Date.now() / 1000) < 5);
  assert.equal(now.backend, 'http://b');
  assert.equal(now.n_tokens, 7);
  assert.equal(now.fingerprint, 'f');
  assert.equal('file_bytes' in now, false);
});
