/**
 * BookedSaves: one save booked per backend until the server answers it (then the next running task's), settled with
 * what the answer left.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BookedSaves } from '../../src/slots/booked-saves.js';
import type { BookedSave, CacheOpResult } from '../../src/slots/slot-cache.js';
import type { SlotContent, SlotState } from '../../src/slots/slot-state.js';
import { held, slot } from '../support/slot-fixtures.js';

/** A slot cache whose booked saves the test answers by hand. */
function fakeCache() {
  const bookings: Array<{
    slot: SlotState;
    key: string;
    answer: (responded?: boolean) => void;
    settledWith: unknown[];
  }> = [];
  return {
    bookings,
    book(s: SlotState, key: string): BookedSave {
      let answer!: (responded?: boolean) => void;
      const answered = new Promise<boolean>((resolve) => (answer = (responded = true) => resolve(responded)));
      const settledWith: unknown[] = [];
      bookings.push({ slot: s, key, answer, settledWith });
      return {
        answered,
        settle: async (content: SlotContent | undefined): Promise<CacheOpResult> => {
          settledWith.push(content);
          await answered;
          return { ok: content !== undefined, ms: 1 };
        },
      };
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('BookedSaves', () => {
  it('books a running big task under its key, and settles it with the content its answer left', async () => {
    const cache = fakeCache();
    const saves = new BookedSaves(cache, () => true);
    const s0 = slot(0);
    assert.equal(saves.book(s0), false, 'nothing of ours runs there');
    saves.taskRunning(s0, 'k1', 'm');
    assert.equal(saves.book(s0), true);
    assert.equal(saves.book(s0), true, 'booked once');
    assert.deepEqual(
      cache.bookings.map((b) => b.key),
      ['k1'],
    );
    const content = held(100, { key: 'k1' });
    const ended = saves.taskEnded(s0, content);
    cache.bookings[0]!.answer();
    assert.deepEqual(await ended, { ok: true, ms: 1 });
    assert.deepEqual(cache.bookings[0]!.settledWith, [content]);
    assert.equal(await saves.taskEnded(s0, undefined), undefined, 'settled once');
    assert.equal(saves.book(s0), false, 'the task is over');
  });

  it('books one save per backend until the server answers it (one deferred queue, oldest first)', async () => {
    const cache = fakeCache();
    const saves = new BookedSaves(cache, () => true);
    const [a, b, other] = [slot(0), slot(1), slot(0, { backend: 1 })];
    saves.taskRunning(a, 'ka', 'm');
    saves.taskRunning(b, 'kb', 'm');
    saves.taskRunning(other, 'ko', 'm');
    assert.equal(saves.book(a), true);
    assert.equal(saves.book(b), false, 'a second save would wait in the same deferred queue');
    assert.equal(saves.book(other), true, 'another backend has its own queue');
    cache.bookings[0]!.answer();
    await tick();
    assert.deepEqual(
      cache.bookings.map((x) => x.key),
      ['ka', 'ko', 'kb'],
      "a's save was answered (it left the server's queue): b's is booked in its place",
    );
    assert.equal(saves.book(b), true);
  });

  it('books nothing for a task that cannot be booked yet (in its prefill, or on a slot not found yet)', () => {
    const cache = fakeCache();
    let bookable = false;
    const saves = new BookedSaves(cache, () => bookable);
    const s0 = slot(0);
    saves.taskRunning(s0, 'k1', 'm');
    assert.equal(saves.book(s0), false);
    bookable = true;
    assert.equal(saves.book(s0), true);
  });

  it('a task that failed settles its booked save as unknown (the file is not kept)', async () => {
    const cache = fakeCache();
    const saves = new BookedSaves(cache, () => true);
    const s0 = slot(0);
    saves.taskRunning(s0, 'k1', 'm');
    saves.book(s0);
    cache.bookings[0]!.answer();
    assert.deepEqual(await saves.taskEnded(s0, undefined), { ok: false, ms: 1 });
    assert.deepEqual(cache.bookings[0]!.settledWith, [undefined]);
  });

  it('a booking whose call failed (the server may still hold it) blocks the backend until its task ends', async () => {
    const cache = fakeCache();
    const saves = new BookedSaves(cache, () => true);
    const [a, b] = [slot(0), slot(1)];
    saves.taskRunning(a, 'ka', 'm');
    saves.taskRunning(b, 'kb', 'm');
    saves.book(a);
    cache.bookings[0]!.answer(false); // a timeout: no answer from the server
    await tick();
    assert.equal(saves.book(b), false, "a's save may still wait in the server's deferred queue");
    await saves.taskEnded(a, undefined);
    assert.equal(saves.book(b), true, "a's task ended: the server has run its save");
  });
});
