/**
 * Making room in a unified KV buffer (slot-room.ts) against a scripted backend: an idle slot the proxy knows is saved,
 * then erased; an erase that fails leaves the room as it was and fails nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { restoreWithRoom, roomForRamLoad } from '../../src/generation/slot-room.js';
import type { SlotRoomDeps } from '../../src/generation/slot-room.js';
import { SlotPool } from '../../src/slots/slot-pool.js';
import type { CacheOpResult } from '../../src/slots/slot-cache.js';
import type { SlotContent } from '../../src/slots/slot-state.js';
import { held } from '../support/slot-fixtures.js';

/**
 * A clearing backend of 4 slots sharing 1000 cells, slot 1 holding `content` (idle) and slot 2 another client's.
 * `believedCells`: the buffer's size as an earlier look showed it (undefined: none yet); `restores`: the answers to
 * the restores asked, in order.
 */
function scripted(
  erase: () => Promise<{ ok: boolean }>,
  { believedCells, restores = [] }: { believedCells?: number; restores?: CacheOpResult[] } = {},
) {
  const pool = new SlotPool([{ nSlots: 4, sharedAcrossModels: () => true }]);
  const content = held(400);
  pool.fill(pool.group(0, 'm')[1]!, content);
  const calls: string[] = [];
  const slotsAnswer = [0, 400, 300, 0].map((tokens, id) => ({
    id,
    n_ctx: 1000,
    is_processing: false,
    id_task: id,
    n_prompt_tokens: tokens,
  }));
  const deps = {
    backends: {
      at: () => ({
        url: 'http://backend',
        kvCells: () => believedCells,
        noteKvCells: () => undefined,
        behaviour: { clearsIdleSlots: () => true, tokensInFlight: () => 0, noteLastTaskShown: () => undefined },
        client: {
          slots: () => Promise.resolve(slotsAnswer),
          slotAction: (_model: string, id: number, action: string) => {
            calls.push(`${action} ${id}`);
            return erase();
          },
        },
      }),
    },
    pool,
    slotCache: {
      save: (_slot: unknown, saved: SlotContent): Promise<CacheOpResult> => {
        calls.push(`save ${saved.key}`);
        return Promise.resolve({ ok: true, ms: 1 });
      },
      restore: (slot: { id: number }, key: string): Promise<CacheOpResult> => {
        calls.push(`restore ${key} into ${slot.id}`);
        return Promise.resolve(restores.shift() ?? { ok: true, ms: 1 });
      },
    },
    rescues: { taken: () => undefined },
    index: { get: (key: string) => (key === 'entry' ? { n_tokens: 500 } : undefined) },
    log: pino({ level: 'silent' }),
  } as unknown as SlotRoomDeps;
  return { deps, pool, content, calls };
}

describe('making room in a unified KV buffer', () => {
  it('saves the idle slot it knows, erases it and forgets it; the load then fits', async () => {
    const { deps, pool, content, calls } = scripted(() => Promise.resolve({ ok: true }));
    const room = await roomForRamLoad(deps, 0, 'm', 500);
    assert.deepEqual(calls, [`save ${content.key}`, 'erase 1']);
    assert.deepEqual(room, { free: 700, nCtx: 1000 }, "slot 2 (another client's) is left alone");
    assert.equal(pool.group(0, 'm')[1]!.content, undefined);
    assert.equal(pool.group(0, 'm')[1]!.busy, false);
  });

  it('an erase that fails (the backend gone) fails nothing: the slot is forgotten, the room as it was', async () => {
    const { deps, pool, calls } = scripted(() => Promise.reject(new Error('connect ECONNREFUSED')));
    const room = await roomForRamLoad(deps, 0, 'm', 500);
    assert.deepEqual(calls.at(-1), 'erase 1');
    assert.deepEqual(room, { free: 300, nCtx: 1000 });
    assert.equal(pool.group(0, 'm')[1]!.content, undefined, 'its content is no longer known');
    assert.equal(pool.group(0, 'm')[1]!.busy, false);
  });

  it("a restore the server finds no room for, where the proxy's picture said it fits: room is made, then it is tried once more", async () => {
    // The picture: 1000 + 1000 cells (an earlier look, before a restart with a smaller -c), 400 held: no look needed.
    const noRoom: CacheOpResult = { ok: false, ms: 1, noRoom: true, error: 'failed to restore' };
    const { deps, pool, content, calls } = scripted(() => Promise.resolve({ ok: true }), {
      believedCells: 2000,
      restores: [noRoom],
    });
    const target = pool.group(0, 'm')[0]!;
    const result = await restoreWithRoom(deps, target, 'entry', 'm');
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(calls, ['restore entry into 0', `save ${content.key}`, 'erase 1', 'restore entry into 0']);
  });

  it('tried once more only once: a second failure is the answer', async () => {
    const noRoom: CacheOpResult = { ok: false, ms: 1, noRoom: true, error: 'failed to restore' };
    const { deps, pool, calls } = scripted(() => Promise.resolve({ ok: true }), {
      believedCells: 2000,
      restores: [noRoom, noRoom],
    });
    const result = await restoreWithRoom(deps, pool.group(0, 'm')[0]!, 'entry', 'm');
    assert.equal(result.ok, false);
    assert.equal(calls.filter((c) => c.startsWith('restore')).length, 2);
  });
});
