/**
 * Room in a unified KV buffer as GET /slots shows it: what a load into a slot needs beside the other slots, and
 * which idle slots to empty for it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freeCells, kvRoomOf, slotsToEmpty } from '../../src/slots/kv-room.js';

/** A `GET /slots` answer: tokens held per slot (undefined: the short form of a slot that never ran a task). */
function slotsAnswer(held: Array<number | undefined>, processing: number[] = [], nCtx = 1000): unknown[] {
  return held.map((tokens, id) => ({
    id,
    n_ctx: nCtx,
    is_processing: processing.includes(id),
    ...(tokens !== undefined && { id_task: id, n_prompt_tokens: tokens }),
  }));
}

describe('kv room', () => {
  it('reads the buffer size and what each slot holds; nothing from an answer that is not a slot list', () => {
    const room = kvRoomOf(slotsAnswer([300, undefined, 200], [2]))!;
    assert.equal(room.nCtx, 1000);
    assert.deepEqual(
      [...room.held],
      [
        [0, 300],
        [1, 0],
        [2, 200],
      ],
    );
    assert.deepEqual([...room.processing], [2]);
    assert.equal(kvRoomOf({ error: 'no slots' }), undefined);
    assert.equal(kvRoomOf([{ id: 0 }]), undefined, 'no n_ctx: cannot tell');
  });

  it("counts the other slots only: a load replaces its own slot's cells", () => {
    const room = kvRoomOf(slotsAnswer([300, 0, 200, 100]))!;
    assert.equal(freeCells(room), 400);
    assert.equal(freeCells(room, 0), 700);
  });

  it('empties nothing when the state fits, else the idle slots with most tokens first', () => {
    const room = kvRoomOf(slotsAnswer([300, 0, 200, 100]))!;
    assert.deepEqual(slotsToEmpty(room, 400, [0, 2, 3]), []);
    assert.deepEqual(slotsToEmpty(room, 550, [0, 2, 3]), [0]);
    assert.deepEqual(slotsToEmpty(room, 800, [0, 2, 3]), [0, 2]);
    assert.deepEqual(slotsToEmpty(room, 800, [0, 2, 3], 3), [0], "the target's own cells count as free");
  });

  it('empties nothing when even all it may empty would not make room, nor a running slot or one it does not know', () => {
    const running = kvRoomOf(slotsAnswer([300, 0, 600, 0], [2]))!;
    assert.deepEqual(slotsToEmpty(running, 500, [0, 2]), [], 'the running task holds what is missing');
    assert.deepEqual(slotsToEmpty(running, 300, [0, 2]), [0]);
    const foreign = kvRoomOf(slotsAnswer([300, 500, 0, 0]))!;
    assert.deepEqual(slotsToEmpty(foreign, 600, [0]), [], "slot 1 holds another client's conversation");
  });
});
