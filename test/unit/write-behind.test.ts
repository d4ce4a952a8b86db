/**
 * WriteBehindSaver's idle time: an answer's save starts once the backend has been quiet for a moment after the
 * settle time, not while a request holds a slot there, nor in the moment between one request's end and the next.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { SlotPool } from '../../src/slots/slot-pool.js';
import type { SlotCache } from '../../src/slots/slot-cache.js';
import type { SlotContent } from '../../src/slots/slot-state.js';
import { WriteBehindSaver } from '../../src/slots/write-behind.js';
import { held } from '../support/slot-fixtures.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A backend of two slots, slot 0 holding an answer not on disk; saves recorded with their time. */
function answered(windowMs: number) {
  const pool = new SlotPool([{ nSlots: 2, sharedAcrossModels: () => true }]);
  const [answer, other] = pool.group(0, 'm') as [ReturnType<SlotPool['group']>[0], ReturnType<SlotPool['group']>[0]];
  pool.fill(answer, held(1000, { key: 'a' }));
  const start = performance.now();
  const savedAt: number[] = [];
  const slotCache = {
    save: (_slot: unknown, content: SlotContent) => {
      savedAt.push(performance.now() - start);
      (content as { saved: boolean }).saved = true;
      return Promise.resolve({ ok: true, ms: 1 });
    },
  } as unknown as SlotCache;
  const saver = new WriteBehindSaver({
    pool,
    slotCache,
    log: pino({ enabled: false }),
    windowMs, // settles after windowMs / 4
    unsaved: (slot) => (slot.content && !slot.content.saved ? slot.content : undefined),
    describeBackend: () => 'backend',
  });
  saver.slotReleased(answer);
  return { pool, other, savedAt, saver };
}

describe('WriteBehindSaver: idle time', () => {
  it('saves an answer once the backend has been quiet for a moment after the settle time', async () => {
    const { savedAt, saver } = answered(400); // settles at 100 ms
    await sleep(250);
    assert.equal(savedAt.length, 1);
    assert.ok(savedAt[0]! >= 140 && savedAt[0]! < 240, `saved at ${savedAt[0]} ms`);
    await saver.close();
  });

  it('not while a request holds a slot there, nor as one ends and the next arrives; at the window at the latest', async () => {
    const { pool, other, savedAt, saver } = answered(800); // settles at 200 ms, window at 800 ms
    const hold = () => pool.acquire('m', () => ({ slot: other }), { timeoutMs: 1000 });
    await hold();
    await sleep(250); // settled, but a request runs
    // Back to back: one request ends and the next takes the slot a moment later, as a client sends its next turn.
    pool.release(other);
    saver.slotReleased(other);
    await sleep(5);
    await hold();
    await sleep(100);
    assert.deepEqual(savedAt, [], 'no save while requests run or between them');
    pool.release(other);
    saver.slotReleased(other);
    await sleep(30);
    assert.deepEqual(savedAt, [], 'not at once: quiet for a moment first');
    await sleep(90);
    assert.equal(savedAt.length, 1, 'saved once quiet');
    await saver.close();
  });
});
