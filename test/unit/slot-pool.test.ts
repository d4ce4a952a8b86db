import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SlotPool } from '../../src/slots/slot-pool.js';
import { planSlot } from '../../src/slots/slot-planner.js';
import { SEED } from '../support/seed-plan.js';
import type { SlotState } from '../../src/slots/slot-state.js';
import { ProxyError } from '../../src/errors.js';
import { withDeadline } from '../support/deadline.js';

const request = { model: 'm', key: 'k', blocks: [], big: false };
const plan = (c: readonly SlotState[]) =>
  planSlot({ ...SEED, request, candidates: c, diskMatch: () => undefined, lcpTh: 0.6 });

describe('SlotPool', () => {
  it('hands out every slot before reusing one (LRU updated on each use)', async () => {
    const pool = new SlotPool([{ nSlots: 2, sharedAcrossModels: () => true }]);
    const a = await pool.acquire('m', plan, { timeoutMs: 1000 });
    const b = await pool.acquire('m', plan, { timeoutMs: 1000 });
    assert.notEqual(a.slot.id, b.slot.id);
    pool.release(a.slot);
    pool.release(b.slot);
    const c = await pool.acquire('m', plan, { timeoutMs: 1000 });
    assert.equal(c.slot.id, a.slot.id, 'the slot released first is the least recently used');
  });

  it('keeps separate slots per model when the backend is not shared', async () => {
    const pool = new SlotPool([{ nSlots: 1, sharedAcrossModels: () => false }]);
    const a = await pool.acquire('A', plan, { timeoutMs: 1000 });
    const b = await withDeadline(pool.acquire('B', plan, { timeoutMs: 1000 }), 500, 'slot of model B');
    assert.notEqual(a.slot, b.slot);
    assert.equal(b.slot.model, 'B');
  });

  it('queues FIFO and wakes a waiter on release', async () => {
    const pool = new SlotPool([{ nSlots: 1, sharedAcrossModels: () => true }]);
    const first = await pool.acquire('m', plan, { timeoutMs: 1000 });
    const order: string[] = [];
    const second = pool.acquire('m', plan, { timeoutMs: 1000 }).then((p) => (order.push('second'), p));
    const third = pool.acquire('m', plan, { timeoutMs: 1000 }).then((p) => (order.push('third'), p));
    pool.release(first.slot);
    const s = await withDeadline(second, 500, 'second waiter');
    pool.release(s.slot);
    await withDeadline(third, 500, 'third waiter');
    assert.deepEqual(order, ['second', 'third']);
  });

  it('rejects with 503 after the acquire timeout', async () => {
    const pool = new SlotPool([{ nSlots: 1, sharedAcrossModels: () => true }]);
    await pool.acquire('m', plan, { timeoutMs: 1000 });
    await assert.rejects(
      pool.acquire('m', plan, { timeoutMs: 30 }),
      (err: unknown) => err instanceof ProxyError && err.status === 503,
    );
  });

  it('stops waiting when the client goes away', async () => {
    const pool = new SlotPool([{ nSlots: 1, sharedAcrossModels: () => true }]);
    await pool.acquire('m', plan, { timeoutMs: 1000 });
    const abort = new AbortController();
    const waiting = pool.acquire('m', plan, { timeoutMs: 1000, signal: abort.signal });
    abort.abort(new Error('gone'));
    await assert.rejects(waiting, /gone/);
  });

  it('never hands out slots beyond the server total', async () => {
    const pool = new SlotPool([{ nSlots: 3, sharedAcrossModels: () => true }]);
    pool.limitSlots(0, 'm', 1);
    const a = await pool.acquire('m', plan, { timeoutMs: 1000 });
    assert.equal(a.slot.id, 0);
    await assert.rejects(
      pool.acquire('m', plan, { timeoutMs: 30 }),
      (err: unknown) => err instanceof ProxyError && err.status === 503,
    );
  });

  it("moveTo: the request's slot record trades ids with the slot the server chose; the group stays in id order", async () => {
    const pool = new SlotPool([{ nSlots: 4, sharedAcrossModels: () => true }]);
    const mine = await pool.acquire('m', plan, { timeoutMs: 1000 });
    const waiting = await pool.acquire('m', plan, { timeoutMs: 1000 });
    const [mineId, waitingId] = [mine.slot.id, waiting.slot.id];
    assert.equal(pool.moveTo(mine.slot, waitingId), true);
    assert.equal(mine.slot.id, waitingId);
    assert.equal(waiting.slot.id, mineId, 'the other request now holds the id the first one left');
    assert.deepEqual(
      pool.group(0, 'm').map((s) => s.id),
      [0, 1, 2, 3],
    );
    assert.equal(pool.group(0, 'm')[waitingId], mine.slot);
    assert.equal(pool.moveTo(mine.slot, waitingId), true, 'already there');
    assert.equal(pool.moveTo(mine.slot, 7), false, 'no such slot');
    pool.limitSlots(0, 'm', 3);
    assert.equal(pool.moveTo(mine.slot, 3), false, 'beyond the server total');
  });
});
