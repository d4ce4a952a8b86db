import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServerBehaviour } from '../../src/backend/server-behaviour.js';
import type { SlotState } from '../../src/slots/slot-state.js';

const slot = (id: number): SlotState => ({ backend: 0, model: '', id, busy: true, disabled: false, lastUsed: 0 });

describe('ServerBehaviour.mayEndSoon', () => {
  it('a stream in its prefill cannot end before a task sent now is taken up; after its first byte it can', () => {
    const behaviour = new ServerBehaviour();
    const s = slot(0);
    assert.equal(behaviour.mayEndSoon(s), false, 'nothing in flight');
    behaviour.noteLaunched(s, true);
    assert.equal(behaviour.launched(s), true);
    assert.equal(behaviour.mayEndSoon(s), false, 'prefilling');
    behaviour.noteFirstByte(s);
    assert.equal(behaviour.mayEndSoon(s), true, 'generating');
    behaviour.noteEnded(s);
    assert.equal(behaviour.mayEndSoon(s), false);
    assert.equal(behaviour.launched(s), false);
  });

  it('a request that is not streamed may always be ending (its answer says nothing until its end)', () => {
    const behaviour = new ServerBehaviour();
    const s = slot(1);
    behaviour.noteLaunched(s, false);
    assert.equal(behaviour.mayEndSoon(s), true);
  });

  it('a small request never counts: nothing it leaves in its slot is saved, so no launch waits for its end', () => {
    const behaviour = new ServerBehaviour();
    const s = slot(3);
    behaviour.noteLaunched(s, false, false);
    assert.equal(behaviour.launched(s), true);
    assert.equal(behaviour.mayEndSoon(s), false);
    behaviour.noteEnded(s);
    behaviour.noteLaunched(s, false);
    assert.equal(behaviour.mayEndSoon(s), true, 'the next request of the slot is big');
  });

  it('a stream that ended before its first byte leaves nothing behind', () => {
    const behaviour = new ServerBehaviour();
    const s = slot(2);
    behaviour.noteLaunched(s, true);
    behaviour.noteEnded(s);
    behaviour.noteLaunched(s, false);
    assert.equal(behaviour.mayEndSoon(s), true, 'the next request of the slot starts fresh');
  });
});

describe('ServerBehaviour idle slots across a restart', () => {
  it('presumes after a restart what the server did before, until seen again either way', () => {
    const behaviour = new ServerBehaviour();
    assert.equal(behaviour.settled(), false);
    behaviour.noteClearsIdleSlots();
    behaviour.forget();
    assert.equal(behaviour.clearsIdleSlots(), true, 'presumed: still saved before each launch');
    assert.equal(behaviour.settled(), false, 'but not known: slots are checked before they are trusted');
    const s = slot(0);
    behaviour.noteTaskStart(s);
    behaviour.noteTaskStart(slot(1));
    behaviour.noteSlotKept(s);
    assert.equal(behaviour.clearsIdleSlots(), false, 'it came back keeping idle slots: seen, believed');
    assert.equal(behaviour.settled(), true);
  });

  it('a server seen clearing since it started is not taken for keeping', () => {
    const behaviour = new ServerBehaviour();
    behaviour.noteKeepsIdleSlots();
    behaviour.forget();
    assert.equal(behaviour.noteClearsIdleSlots(), true, 'news: it came back clearing');
    behaviour.noteKeepsIdleSlots();
    assert.equal(behaviour.clearsIdleSlots(), true);
    assert.equal(behaviour.settled(), true);
  });
});

describe('ServerBehaviour.otherStartedWithin', () => {
  it("is a task started on another slot within the window, never the slot's own", () => {
    let now = 1000;
    const behaviour = new ServerBehaviour(() => now);
    const [a, b] = [slot(0), slot(1)];
    assert.equal(behaviour.otherStartedWithin(a, 1000), false, 'nothing started yet');
    behaviour.noteTaskStart(a);
    assert.equal(behaviour.otherStartedWithin(a, 1000), false, 'its own start does not count');
    behaviour.noteTaskStart(b);
    now += 600;
    assert.equal(behaviour.otherStartedWithin(a, 1000), true);
    now += 500;
    assert.equal(behaviour.otherStartedWithin(a, 1000), false, 'b started 1.1 s ago');
  });

  it('counts a task sent without a pin just before on the same slot record: it ran where the server put it', () => {
    const behaviour = new ServerBehaviour(() => 1000);
    const record = slot(2);
    // A title request (small, unpinned) took the record, then a new conversation's cold turn took it next.
    behaviour.noteTaskStart(record, true);
    behaviour.noteTaskStart(record);
    assert.equal(behaviour.otherStartedWithin(record, 1000), true);
  });

  it("does not count the same slot's previous task, nor an unpinned one once found on it", () => {
    const behaviour = new ServerBehaviour(() => 1000);
    const record = slot(3);
    behaviour.noteTaskStart(record);
    behaviour.noteTaskStart(record);
    assert.equal(behaviour.otherStartedWithin(record, 1000), false, 'a conversation continuing in its slot');
    behaviour.noteTaskStart(record, true);
    behaviour.notePlaced(record);
    behaviour.noteTaskStart(record);
    assert.equal(behaviour.otherStartedWithin(record, 1000), false, 'found where its record says');
  });
});

describe('ServerBehaviour.noteLastTaskShown', () => {
  it('is true only for a task id below one shown before; a lower one does not lower what was seen', () => {
    const behaviour = new ServerBehaviour();
    assert.equal(behaviour.noteLastTaskShown(-1), false, 'a fresh server, nothing seen yet');
    assert.equal(behaviour.noteLastTaskShown(12), false);
    assert.equal(behaviour.noteLastTaskShown(30), false);
    assert.equal(behaviour.noteLastTaskShown(30), false, 'no task since');
    assert.equal(behaviour.noteLastTaskShown(3), true, 'ids went back: the server started again');
    assert.equal(behaviour.noteLastTaskShown(4), true, 'still below 30 until the backend is forgotten');
    behaviour.forget();
    assert.equal(behaviour.noteLastTaskShown(4), false);
  });
});

describe('ServerBehaviour.launchedWhereKnown', () => {
  it('is a big task in flight, once an unpinned one was found on its slot; never a small one', () => {
    const behaviour = new ServerBehaviour();
    const big = slot(4);
    behaviour.noteLaunched(big, true);
    behaviour.noteUnplaced(big);
    assert.equal(behaviour.launchedWhereKnown(big), false, 'its record names no slot yet');
    behaviour.noteFirstByte(big);
    assert.equal(behaviour.mayEndSoon(big), false, 'nor is it waited for');
    behaviour.notePlaced(big);
    assert.equal(behaviour.launchedWhereKnown(big), true);
    assert.equal(behaviour.mayEndSoon(big), true);
    const small = slot(5);
    behaviour.noteLaunched(small, false, false);
    assert.equal(behaviour.launchedWhereKnown(small), false);
    behaviour.noteEnded(big);
    assert.equal(behaviour.launchedWhereKnown(big), false);
  });
});
