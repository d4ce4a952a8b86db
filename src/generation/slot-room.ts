/**
 * Making room in a unified KV buffer before a state is loaded into a slot (see kv-room.ts). On a backend that clears
 * idle slots, the idle slots whose content the proxy knows are emptied, most tokens first, until the state fits:
 * saved first when they are not on disk yet (the launch would have moved them into the server's RAM cache, an erase
 * does not), then erased and forgotten. Their conversations come back from disk. The server alone would fail that
 * load and prefill the whole prompt again.
 */
import { shortKey } from '../cache/meta-file.js';
import { freeCells, kvRoomOf, slotsToEmpty } from '../slots/kv-room.js';
import type { CacheOpResult } from '../slots/slot-cache.js';
import type { SlotState } from '../slots/slot-state.js';
import type { GenerationDeps } from './deps.js';
import { lookAtSlots } from './slot-truth.js';

export type SlotRoomDeps = Pick<GenerationDeps, 'backends' | 'pool' | 'slotCache' | 'rescues' | 'index' | 'log'>;

/**
 * Restore entry `key` into `slot`, with room made for it first on a backend that clears idle slots (roomForRestore).
 * When the proxy's picture was wrong and the server still found no room (on a server that clears idle slots only
 * once its buffer is full, as with `--cache-ram 0`, contents the proxy took for cleared are still there), a look at
 * `GET /slots` makes room and the restore is tried once more.
 */
export async function restoreWithRoom(
  deps: SlotRoomDeps,
  slot: SlotState,
  key: string,
  model: string,
): Promise<CacheOpResult> {
  const needed = deps.index.get(key)?.n_tokens;
  const mayLackRoom = await roomForRestore(deps, slot, model, needed ?? 0);
  const first = await deps.slotCache.restore(slot, key, model, { mayLackRoom });
  if (first.ok || !first.noRoom || !mayLackRoom || !needed) return first;
  const body = await lookAtSlots(deps.backends.at(slot.backend), model);
  const after = await makeRoomForLoad(deps, slot.backend, model, body, needed, slot);
  if (!after || after.free < needed) return first;
  return deps.slotCache.restore(slot, key, model, { mayLackRoom });
}

/**
 * Before a restore of `needed` tokens into `slot` on a backend that clears idle slots: make room for it (see
 * lookIfShort). Resolves with whether a failed restore may still be for lack of room (other slots hold tokens): then
 * the entry is kept (SlotCache.restore).
 */
async function roomForRestore(deps: SlotRoomDeps, slot: SlotState, model: string, needed: number): Promise<boolean> {
  if (!deps.backends.at(slot.backend).behaviour.clearsIdleSlots()) return false;
  const look = await lookIfShort(deps, slot.backend, model, needed, slot);
  if (look.believedHeld !== undefined) return look.believedHeld > 0;
  const after = await makeRoomForLoad(deps, slot.backend, model, look.body, needed, slot);
  return after === undefined || after.free < after.nCtx;
}

/**
 * Before a task whose conversation the server is to load from its RAM cache is launched on a backend that clears
 * idle slots: make room for its `needed` tokens, before the launch's saves forget what the idle slots hold (the
 * server clears them only after the load). Resolves with the room then, undefined when the proxy's picture says it
 * fits or the server cannot tell.
 */
export async function roomForRamLoad(
  deps: SlotRoomDeps,
  backendIndex: number,
  model: string,
  needed: number,
): Promise<RoomAfter | undefined> {
  const look = await lookBeforeRamLoad(deps, backendIndex, model, needed);
  return look.made ? makeRoomForLoad(deps, backendIndex, model, look.body, needed) : undefined;
}

/**
 * The same before a rescue's replay, a load of the proxy's own. It is not made while room may be short and tasks
 * run: their KV grows beyond what `GET /slots` shows as they prefill and generate, and on the real server a rescue
 * loaded then made a client's task fail ("Context size has been exceeded"). Resolves with false then (nothing
 * emptied: the rescue waits), else true once room is made.
 */
export async function roomForRescue(
  deps: SlotRoomDeps,
  backendIndex: number,
  model: string,
  needed: number,
): Promise<boolean> {
  const look = await lookBeforeRamLoad(deps, backendIndex, model, needed);
  if (!look.made) return true;
  if ((kvRoomOf(look.body)?.processing.size ?? 0) > 0) return false;
  await makeRoomForLoad(deps, backendIndex, model, look.body, needed);
  return true;
}

/** Whether room may have to be made for a RAM-cache load (`made`: a look was made), with the look's answer. */
async function lookBeforeRamLoad(
  deps: SlotRoomDeps,
  backendIndex: number,
  model: string,
  needed: number,
): Promise<{ made: false } | { made: true; body: unknown }> {
  if (!deps.backends.at(backendIndex).behaviour.clearsIdleSlots()) return { made: false };
  const look = await lookIfShort(deps, backendIndex, model, needed);
  return look.believedHeld === undefined ? { made: true, body: look.body } : { made: false };
}

/**
 * `GET /slots` (whose answer waits for the server's current batch) only when the proxy's own picture of the slots
 * (what it knows they hold or its running tasks will, the buffer's size from an earlier look) says a load of
 * `needed` tokens into `target` may lack room; else what that picture has the other slots hold.
 */
async function lookIfShort(
  deps: SlotRoomDeps,
  backendIndex: number,
  model: string,
  needed: number,
  target?: SlotState,
): Promise<{ believedHeld: number; body?: undefined } | { believedHeld?: undefined; body: unknown }> {
  const backend = deps.backends.at(backendIndex);
  // The model's own slots: in router mode each model is a server of its own.
  const believedHeld = deps.pool
    .group(backendIndex, model)
    .filter((other) => other !== target)
    .reduce((sum, other) => sum + Math.max(other.content?.nTokens ?? 0, backend.behaviour.tokensInFlight(other)), 0);
  const cells = backend.kvCells(model);
  if (cells !== undefined && believedHeld + needed <= cells * SURE_SHARE) return { believedHeld };
  const body = await lookAtSlots(backend, model);
  return { body };
}

/**
 * The share of the buffer the proxy's picture may fill before a look: other clients' tasks, and the tokens a
 * running task generates, are not in it.
 */
const SURE_SHARE = 0.8;

/** The room left after makeRoomForLoad: free cells beside the other slots, of `nCtx`. */
export interface RoomAfter {
  free: number;
  nCtx: number;
}

/**
 * Make room for a state of `needed` tokens about to be loaded into `target` (undefined: a slot the server picks),
 * given what `GET /slots` showed (`slotsBody`). Resolves with the room then; undefined when the backend keeps a KV
 * buffer per slot or the answer cannot tell.
 */
async function makeRoomForLoad(
  deps: SlotRoomDeps,
  backendIndex: number,
  model: string,
  slotsBody: unknown,
  needed: number,
  target?: SlotState,
): Promise<RoomAfter | undefined> {
  const backend = deps.backends.at(backendIndex);
  const room = kvRoomOf(slotsBody);
  if (!room || !backend.behaviour.clearsIdleSlots()) return undefined;
  const known = deps.pool
    .group(backendIndex, model)
    .filter((slot) => slot !== target && !slot.busy && !slot.disabled && slot.content);
  const chosen = slotsToEmpty(
    room,
    needed,
    known.map((slot) => slot.id),
    target?.id,
  );
  if (chosen.length === 0) return { free: freeCells(room, target?.id), nCtx: room.nCtx };
  const emptied: Array<{ slot: number; key: string; tokens: number }> = [];
  for (const slot of known.filter((s) => chosen.includes(s.id))) {
    if (!deps.pool.takeForBackground(slot)) continue;
    try {
      const content = slot.content;
      if (!content) continue;
      if (!content.saved && !(await deps.slotCache.save(slot, content)).ok) continue;
      // Whatever the answer, the slot's content is no longer known; an erase that failed leaves the room as it was.
      const res = await backend.client.slotAction(model, slot.id, 'erase').catch(() => undefined);
      deps.pool.forget(slot);
      if (!res?.ok) continue;
      deps.rescues.taken(content);
      emptied.push({ slot: slot.id, key: shortKey(content.key), tokens: room.held.get(slot.id) ?? 0 });
    } finally {
      deps.pool.release(slot, { touch: false });
    }
  }
  const free = freeCells(room, target?.id) + emptied.reduce((sum, e) => sum + e.tokens, 0);
  deps.log.info(
    { backend: backend.url, model, needed, free, emptied },
    'emptied idle slots to make room in the KV buffer for a conversation to load',
  );
  return { free, nCtx: room.nCtx };
}
