/**
 * The launch that brings a conversation left to the server's RAM cache back into a slot and saves it (see
 * RamRescues): on a backend that clears idle slots, a launch like any other (inside the launch gate, after the
 * unpinned tasks before it are placed and running, after the saves of what it clears, with room made for the load
 * (slot-room.ts)) of the conversation's last request again, without a pin and with `n_predict: 0`. Its slot is then
 * found as an ended unpinned task's is (the idle slot with a newer task holding exactly what the answer left,
 * slotLeftBy) and saved. The gate stays shut until the save is answered: any launch meanwhile would clear that slot.
 */
import type { SlotContent } from '../slots/slot-state.js';
import type { Replay } from '../slots/ram-rescue.js';
import { slotLeftBy } from '../slots/slot-check.js';
import { shortKey } from '../cache/meta-file.js';
import { readText } from '../backend/llama-client.js';
import { readAnswer, tokensLeftInSlot } from './sse-tap.js';
import type { SlotTruthDeps } from './slot-truth.js';
import { beforeTaskStart, lookAtSlots, tasksRunningBeforeLaunch } from './slot-truth.js';
import type { GenerationDeps } from './deps.js';
import { roomForRescue } from './slot-room.js';

export type RescueDeps = SlotTruthDeps & Pick<GenerationDeps, 'slotCache'>;

/** A replay answers at once (nothing to generate); a slow one is given up like a placement. */
const REPLAY_TIMEOUT_MS = 30_000;

/** The rescue itself; true once `content` (as far as its prompt) is on disk, 'later' when it had to wait. */
export async function rescueFromServerRam(
  deps: RescueDeps,
  backendIndex: number,
  content: SlotContent,
  replay: Replay,
): Promise<boolean | 'later'> {
  const backend = deps.backends.at(backendIndex);
  // A record for the task: an idle one that names no content (after any launch there, most do).
  const slot = deps.pool.group(backendIndex, content.model).find((s) => !s.busy && !s.disabled && !s.content);
  if (!slot || !deps.pool.takeForBackground(slot)) return false;
  const pass = await deps.launchGate.enter(backendIndex);
  try {
    await deps.launchGate.placed(backendIndex);
    await deps.launchGate.launched(backendIndex);
    if (content.saved) return true;
    if (!backend.behaviour.clearsIdleSlots()) return false;
    const plan = { slot, unpinned: true as const };
    if (content.nTokens && !(await roomForRescue(deps, backendIndex, content.model, content.nTokens))) return 'later';
    await beforeTaskStart(deps, plan, content.model);
    backend.ramCache.take(content);
    const baseline = await tasksRunningBeforeLaunch(deps, plan, content.model);
    backend.behaviour.noteLaunched(slot, false, true, content.nTokens ?? 0);
    let answer: string;
    try {
      const call = replay();
      const res = await backend.client.generate(call.path, call.body, {
        signal: AbortSignal.timeout(REPLAY_TIMEOUT_MS),
        stream: false,
      });
      answer = await readText(res.body);
      if (res.status >= 400) throw new Error(`status ${res.status}: ${answer.slice(0, 200)}`);
    } finally {
      backend.behaviour.noteEnded(slot);
    }
    backend.behaviour.noteContact();
    const { timings } = readAnswer(Buffer.from(answer));
    const left = tokensLeftInSlot(timings);
    const id =
      left === undefined ? undefined : slotLeftBy(await lookAtSlots(backend, content.model), left, baseline.lastTask);
    if (id === undefined || !deps.pool.moveTo(slot, id)) return false;
    const rescued: SlotContent = { ...content, nTokens: left!, saved: false };
    deps.pool.fill(slot, rescued);
    const save = await deps.slotCache.save(slot, rescued);
    deps.log.info(
      {
        backend: backend.url,
        model: content.model,
        slot: slot.id,
        key: shortKey(content.key),
        cache_n: timings?.cache_n,
        prompt_n: timings?.prompt_n,
        save,
      },
      "saved from the server's RAM cache",
    );
    return save.ok;
  } catch (err) {
    deps.pool.forget(slot);
    deps.log.warn(
      { backend: backend.url, key: shortKey(content.key), err },
      "bringing a conversation back from the server's RAM cache failed",
    );
    return false;
  } finally {
    pass.release();
    deps.pool.release(slot, { touch: false });
  }
}
