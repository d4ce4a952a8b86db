import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  judgeSlot,
  lastTaskShown,
  slotEndedSince,
  slotLeftBy,
  parseSlots,
  runningTasks,
  slotOfMarkedTask,
  slotOfNewTask,
  slotTokensLeft,
} from '../../src/slots/slot-check.js';
import { slot, held } from '../support/slot-fixtures.js';

/** `GET /slots` as llama-server answers it: the long form once a task ran on the slot. */
const answer = (...slots: Array<number | null>) =>
  slots.map((tokens, id) =>
    tokens === null ? { id, is_processing: false } : { id, is_processing: false, id_task: 1, n_prompt_tokens: tokens },
  );

describe('parseSlots', () => {
  it('reads n_prompt_tokens, null for the short form, and refuses what is not a slot list', () => {
    assert.deepEqual(
      [...parseSlots(answer(744, null))!],
      [
        [0, 744],
        [1, null],
      ],
    );
    assert.equal(parseSlots({ error: 'no slots' }), undefined);
  });
});

describe('lastTaskShown', () => {
  it('is the highest id_task on any slot, running or not; -1 when every slot is in the short form', () => {
    const slots = [
      { id: 0, is_processing: false, id_task: 41, n_prompt_tokens: 90 },
      { id: 1, is_processing: true, id_task: 57 },
      { id: 2, is_processing: false },
    ];
    assert.equal(lastTaskShown(slots), 57);
    assert.equal(lastTaskShown([{ id: 0, is_processing: false }, { id: 1 }]), -1);
    assert.equal(lastTaskShown({ error: 'nope' }), undefined);
    assert.equal(lastTaskShown([{ id: 0, id_task: '9' }, null]), -1, 'ids that are not numbers count for nothing');
  });
});

describe('slotTokensLeft', () => {
  // As the real server answered for a task with n_predict 400 (checked on the shared binary).
  const generating = (nRemain: number, nDecoded: number, processing = true) => [
    { id: 0, is_processing: false },
    {
      id: 1,
      is_processing: processing,
      next_token: [{ has_next_token: processing, n_remain: nRemain, n_decoded: nDecoded }],
    },
  ];
  it('reads n_remain of a slot that is generating', () => {
    assert.equal(slotTokensLeft(generating(136, 264), 1), 136);
  });
  it('says nothing of a slot still in its prefill, without a limit, idle, or missing', () => {
    assert.equal(slotTokensLeft(generating(400, 0), 1), undefined, 'prefill: nothing decoded yet');
    assert.equal(slotTokensLeft(generating(-1, 50), 1), undefined, 'no n_predict');
    assert.equal(slotTokensLeft(generating(-1, 0, false), 1), undefined, 'idle');
    assert.equal(slotTokensLeft(generating(3, 5), 0), undefined, 'short form');
    assert.equal(slotTokensLeft(generating(3, 5), 7), undefined, 'no such slot');
    assert.equal(slotTokensLeft({ error: 'x' }, 1), undefined, 'not a slot list');
  });
});

describe('slotOfMarkedTask', () => {
  /** `GET /slots` of 4 slots: the seed in each slot's params (none: the short form), and the ones processing. */
  const slots = (seeds: Record<number, number>, processing: number[] = []) =>
    [0, 1, 2, 3].map((id) =>
      seeds[id] === undefined
        ? { id, is_processing: false }
        : { id, is_processing: processing.includes(id), id_task: 10 + id, params: { seed: seeds[id], top_k: 40 } },
    );
  it('finds the slot whose task carries the mark, running it or idle after it', () => {
    assert.deepEqual(slotOfMarkedTask(slots({ 0: 5, 2: 123456 }, [0, 2]), 123456), { slot: 2, running: true });
    assert.deepEqual(slotOfMarkedTask(slots({ 0: 5, 3: 123456 }, [0]), 123456), { slot: 3, running: false });
  });
  it('finds nothing where no slot or several show the mark, or the answer is not a slot list', () => {
    assert.equal(slotOfMarkedTask(slots({ 0: 5, 1: 4294967295 }, [0, 1]), 123456), undefined, 'not shown yet');
    assert.equal(slotOfMarkedTask(slots({ 0: 77, 1: 77 }), 77), undefined);
    assert.equal(slotOfMarkedTask({ error: 'no slots' }, 77), undefined);
    assert.equal(slotOfMarkedTask([{ id: 0, params: null }], 77), undefined);
  });
});

describe('slotOfNewTask', () => {
  /** `GET /slots` with these slots processing these task ids (4 slots). */
  const running = (tasks: Record<number, number>) =>
    runningTasks(
      [0, 1, 2, 3].map((id) =>
        tasks[id] === undefined ? { id, is_processing: false } : { id, is_processing: true, id_task: tasks[id] },
      ),
    );
  it('finds the slot of the task that was not running before the launch', () => {
    assert.equal(slotOfNewTask(running({ 1: 7 })!, running({ 1: 7, 3: 9 }), [1]), 3);
  });
  it('counts a new task id on a slot whose task of ours has just ended there', () => {
    assert.equal(slotOfNewTask(running({ 1: 7 })!, running({ 1: 9 }), [1]), 1);
  });
  it('waits while nothing new runs, and gives up when two tasks started (another client)', () => {
    assert.equal(slotOfNewTask(running({ 1: 7 })!, running({ 1: 7 }), [1]), 'not yet');
    assert.equal(slotOfNewTask([], running({ 0: 8, 2: 9 }), []), undefined);
    assert.equal(slotOfNewTask([], undefined, []), undefined, 'not a slot list');
  });
  it('does not take a task of ours that was sent but not running before for the new one', () => {
    assert.equal(slotOfNewTask([], running({ 2: 8 }), [2]), 'not yet');
    assert.equal(slotOfNewTask([], running({ 2: 8, 0: 9 }), [2]), 0);
  });
  it('without task ids, tells tasks apart by slot', () => {
    const bySlot = (...ids: number[]) => runningTasks(ids.map((id) => ({ id, is_processing: true })));
    assert.equal(slotOfNewTask(bySlot(1)!, bySlot(1, 2), [1]), 2);
  });
  it('with minTokens, leaves out a task whose KV holds fewer tokens (a small task started at the same moment)', () => {
    const kv = (tokens: Record<number, number>) =>
      runningTasks(
        Object.entries(tokens).map(([id, n]) => ({
          id: Number(id),
          is_processing: true,
          id_task: 10 + Number(id),
          n_prompt_tokens: n,
        })),
      );
    assert.equal(slotOfNewTask([], kv({ 0: 40, 2: 2700 }), [], 1300), 2);
    assert.equal(slotOfNewTask([], kv({ 0: 40 }), [], 1300), 'not yet', 'only the small one shows yet');
    assert.equal(slotOfNewTask([], kv({ 0: 40, 2: 2700 }), []), undefined, 'without it, two candidates');
  });
});

/** A slot as `GET /slots` shows it once it ran a task. */
const shown = (id: number, idTask: number, tokens: number, processing = false) => ({
  id,
  is_processing: processing,
  id_task: idTask,
  n_prompt_tokens: tokens,
});

describe('slotLeftBy', () => {
  it('is the idle slot with a task newer than the launch that holds what the answer left (a stop token of slack)', () => {
    const body = [shown(0, 5, 3139), shown(1, 12, 3141), shown(2, 13, 40), shown(3, 14, 3000, true)];
    assert.equal(slotLeftBy(body, 3139, 10), 1, 'slot 0 holds as much, from a task before the launch');
  });
  it('is undefined when none or several match, or the answer is not a slot list', () => {
    assert.equal(slotLeftBy([shown(0, 12, 0)], 3139, 10), undefined, 'cleared by another launch since');
    assert.equal(slotLeftBy([shown(0, 12, 3139), shown(1, 13, 3140)], 3139, 10), undefined);
    assert.equal(slotLeftBy({ error: 'no' }, 3139, 10), undefined);
  });
});

describe('slotEndedSince', () => {
  it('is the one idle slot with a task newer than the launch whose KV holds at least minTokens', () => {
    const body = [shown(0, 5, 3139), shown(1, 12, 2700), shown(2, 13, 40), shown(3, 14, 3000, true)];
    assert.equal(slotEndedSince(body, 10, [], 256), 1, 'slot 0 from before the launch, slot 2 a small task');
  });
  it('leaves out the slots of our other tasks, and is undefined when none or several match', () => {
    const body = [shown(0, 11, 2900), shown(1, 12, 2700)];
    assert.equal(slotEndedSince(body, 10, [0], 256), 1, 'slot 0 is where another task of ours was sent');
    assert.equal(slotEndedSince(body, 10, [], 256), undefined, 'two candidates');
    assert.equal(slotEndedSince([shown(1, 12, 0)], 10, [], 256), undefined, 'cleared by a launch since');
    assert.equal(slotEndedSince({ error: 'no' }, 10, [], 256), undefined);
  });
});

describe('judgeSlot', () => {
  it('confirms a slot holding the tokens we recorded (a stop token of slack)', () => {
    const target = slot(0, { content: held(744) });
    assert.equal(judgeSlot(target, [target], parseSlots(answer(745))!), 'confirmed');
  });

  it('an empty slot while another still holds its content: the server clears idle slots', () => {
    const target = slot(0, { content: held(744) });
    const other = slot(1, { content: held(500) });
    assert.equal(judgeSlot(target, [target, other], parseSlots(answer(0, 500))!), 'cleared-idle');
  });

  it('every slot empty, or the slot ran no task since the server started: restarted', () => {
    const target = slot(0, { content: held(744) });
    const other = slot(1, { content: held(500) });
    assert.equal(judgeSlot(target, [target, other], parseSlots(answer(0, 0))!), 'restarted');
    assert.equal(judgeSlot(target, [target, other], parseSlots(answer(null, null))!), 'restarted');
    // On a backend known to clear idle slots, every idle slot empty is what a task start leaves; a restart still
    // shows the short form for slots that ran no task since.
    assert.equal(judgeSlot(target, [target, other], parseSlots(answer(0, 0))!, true), 'cleared-idle');
    assert.equal(judgeSlot(target, [target, other], parseSlots(answer(null, null))!, true), 'restarted');
  });

  it('a slot only restored into shows the short form: trusted', () => {
    const target = slot(0, { content: held(744, { restored: true }) });
    assert.equal(judgeSlot(target, [target], parseSlots(answer(null))!), 'confirmed');
  });

  it('other tokens in the slot: another client replaced it', () => {
    const target = slot(0, { content: held(744) });
    assert.equal(judgeSlot(target, [target], parseSlots(answer(438))!), 'replaced');
  });

  it('nothing to conclude without a recorded token count or an entry for the slot', () => {
    const target = slot(0, { content: held(744, { nTokens: undefined }) });
    assert.equal(judgeSlot(target, [target], parseSlots(answer(0))!), 'confirmed');
    const absent = slot(5, { content: held(744) });
    assert.equal(judgeSlot(absent, [absent], parseSlots(answer(0))!), 'confirmed');
  });
});
