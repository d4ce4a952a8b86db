/**
 * META_DIR shared with the seed (the Python proxy): its meta files are read at start-up and used for restores,
 * and a corrupt file is set aside without stopping the start.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import {
  chat,
  continued,
  exists,
  keyOf,
  logLineAfter,
  metaPath,
  opening,
  readMeta,
  slotFileEvents,
} from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';

/**
 * What the seed writes: `json.dump(meta, f, indent=2, ensure_ascii=False)` of its six fields, the timestamp a
 * float from `time.time()`. For these value types that is exactly JSON.stringify with a 2-space indent.
 */
function seedMetaText(meta: Record<string, any>): string {
  const timestamp = Math.floor(meta.timestamp) + 0.5123456;
  const { key, model_id, prefix_len, wpb, blocks } = meta;
  return JSON.stringify({ key, model_id, prefix_len, wpb, blocks, timestamp }, null, 2);
}

/** Restart simulator (empty slots) and proxy; resolve with the proxy's 'cache index loaded' line. */
async function restartBoth(stack: Stack): Promise<Record<string, any>> {
  await stack.sim.restart();
  const mark = stack.logs.lines.length;
  await stack.restartProxy();
  return logLineAfter(stack.logs, mark, 'cache index loaded');
}

describe('META_DIR in the seed format', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('a meta written by the Python seed (indent 2, float timestamp, no backend) is loaded at start and used for a restore', async () => {
    stack = await startStack();
    const p = opening(701);
    const first = await chat(stack, p);
    const ours = await readMeta(stack.metaDir, keyOf(p));
    const text = seedMetaText(ours);
    assert.ok(
      !text.includes('"backend"') && /"timestamp": \d+\.\d+\n}$/.test(text),
      'the file has only the seed fields',
    );
    await writeFile(metaPath(stack.metaDir, keyOf(p)), text);

    const loaded = await restartBoth(stack);
    assert.equal(loaded.entries, 1);
    const simMark = stack.sim.events.length;
    const next = await chat(stack, continued(p, first.content, 702));

    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.equal(restores.length, 1);
    assert.equal(restores[0]!.filename, keyOf(p));
    assert.equal(restores[0]!.ok, true);
    assert.equal(next.line.decision, 'restore');
    assert.ok(next.timings.cache_n >= first.timings.prompt_n, `cache_n ${next.timings.cache_n}`);
  });

  it('a corrupt meta file is renamed .corrupt and logged; start-up goes on with the valid entries', async () => {
    stack = await startStack();
    const p = opening(711);
    await chat(stack, p);
    const corruptKey = 'f'.repeat(64);
    const corrupt = metaPath(stack.metaDir, corruptKey);
    await writeFile(corrupt, '{"key": "' + corruptKey + '", "model_id": ');

    const loaded = await restartBoth(stack);

    assert.equal(loaded.entries, 1, 'the valid meta is still loaded');
    assert.equal(await exists(corrupt), false);
    assert.ok(await exists(corrupt + '.corrupt'), 'kept aside for inspection');
    const warning = stack.logs.lines.find((l) => l.msg === 'unreadable meta file set aside');
    assert.ok(warning, 'logged');
    assert.equal(warning.file, corrupt);
    assert.equal((await readdir(stack.metaDir)).filter((n) => n.endsWith('.meta.json')).length, 1);
    const res = await chat(stack, opening(712, 10));
    assert.equal(res.line.status, 200, 'the proxy serves');
  });
});
