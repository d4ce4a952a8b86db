import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  EMPTY_SAVE_BYTES,
  isValidFilename,
  modelFingerprint,
  readSaveFile,
  writeSaveFile,
} from '../../src/sim/save-file.js';

describe('sim save files', () => {
  let dir: string;
  const fp = modelFingerprint('/models/tiny.gguf', 'tiny');
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-save-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('sizes files like real KV dumps: 48 + n × bytes per token', async () => {
    const file = join(dir, 'a.bin');
    const tokens = Array.from({ length: 1029 }, (_, i) => `t${i}`);
    const size = await writeSaveFile(file, fp, tokens, 8208);
    assert.equal(size, 8_446_080);
    assert.equal((await stat(file)).size, 8_446_080);
    assert.deepEqual(await readSaveFile(file, fp, 8208), { tokens, bytes: 8_446_080 });
  });

  it('writes 48 bytes for an empty slot', async () => {
    const file = join(dir, 'empty.bin');
    assert.equal(await writeSaveFile(file, fp, [], 100_000), EMPTY_SAVE_BYTES);
    assert.equal((await stat(file)).size, 48);
    assert.deepEqual(await readSaveFile(file, fp, 100_000), { tokens: [], bytes: 48 });
  });

  it('is sparse: a multi-GB modelled file uses almost no disk', async () => {
    const file = join(dir, 'big.bin');
    const tokens = Array.from({ length: 30_000 }, (_, i) => `t${i}`);
    await writeSaveFile(file, fp, tokens, 100_000);
    const s = await stat(file);
    assert.equal(s.size, 48 + 30_000 * 100_000);
    assert.ok(s.blocks * 512 < 50_000_000, `allocated ${s.blocks * 512} bytes`);
  });

  it('refuses a file of another model, a foreign file, a truncated file and a missing file', async () => {
    const file = join(dir, 'x.bin');
    await writeSaveFile(file, fp, ['a', 'b'], 10);
    assert.equal(await readSaveFile(file, modelFingerprint('/models/other.gguf', 'other'), 10), undefined);
    await truncate(file, 50);
    assert.equal(await readSaveFile(file, fp, 10), undefined);
    await writeFile(join(dir, 'junk.bin'), 'not a save file at all, really not');
    assert.equal(await readSaveFile(join(dir, 'junk.bin'), fp, 10), undefined);
    assert.equal(await readSaveFile(join(dir, 'missing.bin'), fp, 10), undefined);
  });

  it('validates filenames like llama-server', () => {
    for (const ok of ['a.bin', 'key-123', 'x']) assert.equal(isValidFilename(ok), true, ok);
    for (const bad of ['', '../x', 'sub/x.bin', '..', 'a\\b', 'a..b', ' lead', 'trail.', 'nul\u0000']) {
      assert.equal(isValidFilename(bad), false, JSON.stringify(bad));
    }
  });
});
