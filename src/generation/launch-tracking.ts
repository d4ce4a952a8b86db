/**
 * Following a task from its launch to its slot: the launch gate a request passes on a backend that clears idle slots
 * (see launch-gate.ts), how long a pinned task keeps it shut, and where a task sent without a pin landed.
 */
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import {
  lastTaskShown,
  runningTasks,
  slotEndedSince,
  slotOfMarkedTask,
  slotOfNewTask,
  slotLeftBy,
  slotProcessing,
} from '../slots/slot-check.js';
import type { GatePass, LaunchGate } from '../slots/launch-gate.js';
import type { RunningTask } from '../slots/slot-check.js';
import type { SlotPlan } from '../slots/slot-state.js';
import type { Backend } from '../backend/backend.js';
import type { ForwardOutcome } from './forward.js';
import { tokensLeftInSlot } from './sse-tap.js';
import { bookSaveUnderContention } from './before-launch.js';
import { lookAtSlots, restoreInstead } from './slot-truth.js';
import type { RestoreWorthIt, SlotTruthDeps } from './slot-truth.js';

/**
 * On a backend that clears idle slots, wait for the launch gate (see launch-gate.ts). Another request's task may
 * have started meanwhile and cleared this request's slot: a plan that counted on the slot's content becomes a
 * restore of what that launch saved. Resolves with the pass to give back once the task runs (undefined elsewhere).
 */
export async function enterLaunchGate(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  analysis: PromptAnalysis,
  restoreWorthIt: RestoreWorthIt,
): Promise<GatePass | undefined> {
  const backend = plan.slot.backend;
  if (!deps.backends.at(backend).behaviour.clearsIdleSlots()) return undefined;
  const pass = await deps.launchGate.enter(backend);
  if (plan.resident && !plan.slot.content) restoreInstead(deps, plan, analysis, restoreWorthIt);
  return pass;
}

/**
 * A task pinned to its slot was sent: leave the gate once the server shows it running there (GET /slots), or the
 * answer began or ended, or after a deadline (the gate must never stay shut).
 */
export async function leaveLaunchGateWhenRunning(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  model: string,
  answered: Promise<unknown>,
  pass: GatePass,
): Promise<void> {
  const backend = deps.backends.at(plan.slot.backend);
  const over = settled(answered);
  const deadline = performance.now() + LAUNCH_WAIT_MS;
  const pause = pollPauses(deps.launchGate, backend.index, answered);
  try {
    while (!over.now && performance.now() < deadline) {
      const body = await lookAtSlots(backend, model, LAUNCH_WAIT_MS);
      if (slotProcessing(body, plan.slot.id) !== false) return; // running, or /slots cannot tell
      await pause();
    }
  } finally {
    pass.release();
  }
}

/**
 * A task sent without a pin (SlotPlan.unpinned) runs on a slot the server chose. The gate opens at once, so that a
 * small request arriving meanwhile reaches the server as soon as it would without the proxy; a big request's launch
 * waits in the gate until every unpinned task before it is found (LaunchGate.placed), since it might be pinned to
 * that very slot, or be told apart from it only by its size; a restore also until the task runs on the server
 * (seen on its slot, else its first byte or its end: LaunchGate.launched), as its launch would clear the restored slot.
 *
 * A big request's slot is found with `GET /slots`: by its mark where it carries one (task-mark.ts, slotOfMarkedTask:
 * the one slot showing it, running or idle). Else, and until the mark shows where there is a baseline: while it
 * runs, the one task not running before the launch (`baseline`, see slotOfNewTask) whose KV holds enough tokens not
 * to be a small task started meanwhile (tokensAtFirstSight); once its answer has ended, the one idle slot with a
 * newer task whose KV holds what the answer left (slotLeftBy); ended before any look showed it running, the one such
 * slot holding at least that many tokens (slotEndedSince). Its slot record then moves there. A small request's slot
 * is not looked for: nothing it leaves is saved. Resolves with false when the slot is not known (a small request,
 * the slot taken by another task already, or, unmarked, another client's task started at the same moment): the
 * request's content is then not known to be anywhere.
 */
export function placeUnpinnedTask(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  analysis: Pick<PromptAnalysis, 'model' | 'big' | 'wordCount'>,
  task: { answered: Promise<ForwardOutcome>; running: Promise<void> },
  pass: GatePass | undefined,
  clues: LaunchClues,
): Promise<boolean> {
  const { answered } = task;
  const { behaviour } = deps.backends.at(plan.slot.backend);
  const where =
    analysis.big && (clues.baseline || clues.mark !== undefined)
      ? findUnpinnedSlot(deps, plan, analysis.model, answered, clues, tokensAtFirstSight(plan, analysis))
      : Promise.resolve(undefined);
  // Until found, and for good when it is not: its record names no real slot (noteEnded forgets it).
  behaviour.noteUnplaced(plan.slot);
  const found = where.then(async (state) => {
    if (!state) return false;
    behaviour.notePlaced(plan.slot);
    bookSaveUnderContention(deps, plan.slot);
    // Found ended, its booked save runs at once: a launch that reached the server first would clear the slot.
    if (state === 'ended') await deps.bookedSaves.answered(plan.slot);
    return true;
  });
  deps.launchGate.notePlacing(plan.slot.backend, found);
  // Launched once `GET /slots` shows it on its slot; when it cannot, once its first byte (or its end) comes.
  const seen = where.then(
    (state) => (state ? undefined : task.running),
    () => task.running,
  );
  deps.launchGate.noteLaunching(plan.slot.backend, Promise.race([task.running, seen]));
  pass?.release();
  return found;
}

/**
 * The fewest tokens an unpinned big task's slot shows once it runs, telling it from a small task started meanwhile:
 * half of what the RAM cache gives back, which is in its KV from the launch; for a cold one, half of its prompt's
 * first batch, which `GET /slots` shows from the launch on (llama-server takes up to `n_batch` prompt tokens at
 * once: 2048 by default, seldom fewer than 512; a prompt makes about a token a word or more).
 */
function tokensAtFirstSight(plan: SlotPlan, analysis: Pick<PromptAnalysis, 'wordCount'>): number {
  const broughtBack = plan.fromServerCache?.content.nTokens;
  return Math.floor((broughtBack ?? Math.min(analysis.wordCount, SMALLEST_FIRST_BATCH)) / 2);
}

const SMALLEST_FIRST_BATCH = 512;

async function findUnpinnedSlot(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  model: string,
  answered: Promise<ForwardOutcome>,
  { baseline, mark }: LaunchClues,
  minTokens: number,
): Promise<'running' | 'ended' | undefined> {
  const { slot } = plan;
  const backend = deps.backends.at(slot.backend);
  const over = settled(answered);
  const deadline = performance.now() + LAUNCH_WAIT_MS;
  const pause = pollPauses(deps.launchGate, backend.index, answered);
  while (performance.now() < deadline) {
    const ended = over.now;
    const body = await lookAtSlots(backend, model, LAUNCH_WAIT_MS);
    const marked = mark === undefined ? undefined : markedSlot(backend, body, mark);
    if (marked) return movedTo(marked.slot, marked.running ? 'running' : 'ended');
    // Not shown yet (or never, by a server that hides the parameters): without a baseline, only the mark can tell.
    if (!baseline) {
      if (ended) return undefined;
      await pause();
      continue;
    }
    if (ended) {
      const left = tokensLeftInSlot((await answered).timings);
      const id = left === undefined ? undefined : slotLeftBy(body, left, baseline.lastTask);
      return movedTo(id, 'ended');
    }
    // Our other tasks in flight whose slot is known (a small unpinned one's record names no real slot).
    const ourPending = deps.pool
      .all()
      .filter(
        (other) => other.backend === slot.backend && other !== slot && backend.behaviour.launchedWhereKnown(other),
      )
      .map((other) => other.id);
    const chosen = slotOfNewTask(baseline.running, runningTasks(body), ourPending, minTokens);
    if (chosen === undefined) return undefined;
    if (chosen !== 'not yet') return movedTo(chosen, 'running');
    const endedOn = slotEndedSince(body, baseline.lastTask, ourPending, minTokens);
    if (endedOn !== undefined) return movedTo(endedOn, 'ended');
    await pause();
  }
  return undefined;

  function movedTo(id: number | undefined, state: 'running' | 'ended') {
    return id !== undefined && deps.pool.moveTo(slot, id) ? state : undefined;
  }
}

/**
 * The pauses between a loop's looks at `GET /slots` for one task (where it runs, whether it runs yet). Each look
 * costs the server CPU time: on a CPU-only machine its answer, and ours, slow the prefill in progress (a look every
 * 5 ms slowed a real 4k-token prefill by 13 to 20 % on the 2-core bench machine, every 20 ms by 2 to 5 %). So the
 * looks come every LAUNCH_POLL_MS only while a request of ours waits to launch on the backend (it waits for this
 * answer); otherwise each pause doubles, up to CALM_POLL_MS, and is cut short when a request comes to launch or the
 * task's answer ends.
 */
function pollPauses(gate: LaunchGate, backend: number, answered: Promise<unknown>): () => Promise<void> {
  const ended = answered.then(
    () => undefined,
    () => undefined,
  );
  let calmLooks = 0;
  return async () => {
    if (gate.someoneWaits(backend)) calmLooks = 0;
    const ms = Math.min(LAUNCH_POLL_MS * 2 ** calmLooks++, CALM_POLL_MS);
    let timer: NodeJS.Timeout | undefined;
    const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([elapsed, gate.nextArrival(backend), ended]);
    clearTimeout(timer);
  };
}

/** A view of whether `promise` has settled yet. */
function settled(promise: Promise<unknown>): { now: boolean } {
  const state = { now: false };
  promise.then(
    () => (state.now = true),
    () => (state.now = true),
  );
  return state;
}

/**
 * The slot whose task shows `mark` in a `GET /slots` answer (see slotOfMarkedTask); a sighting tells that the
 * backend shows marks, so later marked launches need no look before them.
 */
export function markedSlot(
  backend: Backend,
  body: unknown,
  mark: number,
): { slot: number; running: boolean } | undefined {
  const marked = slotOfMarkedTask(body, mark);
  if (marked) backend.behaviour.noteTaskMarkShown();
  return marked;
}

/**
 * How a task sent without a pin is found on its slot: by its `mark` (task-mark.ts), by what is new since its
 * `baseline`, or either, the mark first.
 */
export interface LaunchClues {
  baseline?: LaunchBaseline;
  mark?: number;
}

/** What `GET /slots` showed before a task was sent without a pin (see launchClues). */
export interface LaunchBaseline {
  /** The tasks already running, another client's among them. */
  running: RunningTask[];
  /** The latest task id any slot showed: a task of ours shows a newer one. */
  lastTask: number;
}

/**
 * Before a task is sent without a pin, how the slot it runs on will be told afterwards: by its `mark` where it has one
 * (task-mark.ts), and, unless the backend was seen showing marks, by what ran on the server before it (a look at
 * `GET /slots`; an empty baseline when that cannot say).
 */
export async function launchClues(
  deps: SlotTruthDeps,
  plan: Pick<SlotPlan, 'slot'>,
  model: string,
  mark: number | undefined,
): Promise<LaunchClues> {
  const backend = deps.backends.at(plan.slot.backend);
  if (mark !== undefined && backend.behaviour.showsTaskMarks()) return { mark };
  const body = await lookAtSlots(backend, model);
  const baseline = { running: runningTasks(body) ?? [], lastTask: lastTaskShown(body) ?? Infinity };
  return mark === undefined ? { baseline } : { baseline, mark };
}

const LAUNCH_WAIT_MS = 3000;
const LAUNCH_POLL_MS = 5;
const CALM_POLL_MS = 50;
