import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { beforeTaskStart } from '../../src/generation/before-launch.js';
import type { SlotTruthDeps } from '../../src/generation/slot-truth.js';
import { SlotPool } from '../../src/slots/slot-pool.js';
import type { SlotContent } from '../../src/slots/slot-state.js';
import { unitBackend } from '../support/unit-backend.js';

const conversation: SlotContent = {
  key: 'x',
  model: 'm',
  blocks: ['a', 'b', 'c'],
  prefixLen: 300,
  big: true,
  saved: true,
  nTokens: 300,
};

/** A backend seen clearing its idle slots at every task start, its record 0 holding `conversation` (on disk). */
function clearingBackend() {
  const pool = new SlotPool([{ nSlots: 2, sharedAcrossModels: () => true }]);
  const backend = unitBackend(pool, 2, { kind: 'llama-server' });
  backend.noteClearsIdleSlots('slots check');
  backend.ramCache.learnTokenSize('m', 100, 100 * 4112);
  const cleared: SlotContent[] = [];
  const deps = {
    backends: { at: () => backend },
    pool,
    rescues: { leftToRam: () => false, leavesToRam: () => false, cleared: (c: SlotContent) => cleared.push(c) },
    answerSaver: { saveBeforeClearing: async () => [] },
    bookedSaves: { has: () => false, book: () => false },
  } as unknown as SlotTruthDeps;
  const [record] = pool.group(0, 'm');
  pool.fill(record!, conversation);
  assert.ok(pool.takeForBackground(record!)); // the request's plan holds it
  return { backend, deps, record: record!, cleared };
}

describe('beforeTaskStart on a server that clears idle slots: what the request’s own slot record held', () => {
  it('sent without a pin, the task lands where the server puts it: the record’s conversation goes into the RAM cache', async () => {
    const { backend, deps, record, cleared } = clearingBackend();
    await beforeTaskStart(deps, { slot: record, unpinned: true }, 'm');
    assert.equal(record.content, undefined);
    assert.equal(backend.ramCache.find('m', ['a', 'b', 'c', 'd'])?.content, conversation);
    assert.deepEqual(cleared, [conversation]);
  });

  it('pinned, the task runs on that very slot: the record keeps what it holds, and nothing goes into the RAM cache', async () => {
    const { backend, deps, record, cleared } = clearingBackend();
    await beforeTaskStart(deps, { slot: record }, 'm');
    assert.equal(record.content, conversation);
    assert.equal(backend.ramCache.find('m', ['a', 'b', 'c', 'd']), undefined);
    assert.deepEqual(cleared, []);
  });
});
