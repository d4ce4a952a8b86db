/**
 * Trust nothing the server did not confirm: before a request is pinned to a slot believed to hold its
 * conversation, `GET /slots` (cheap) says what the slots really hold, when the backend may have changed behind the
 * proxy's back (quiet for a while: restarted, slept, used by another client) or when it is not yet known whether
 * the server keeps idle slots at all (see ServerBehaviour).
 *
 * `GET /slots` shows `n_prompt_tokens` (the tokens now in the slot's KV) only for slots that ran a task since the
 * server started: a slot that was only restored shows nothing, and then nothing can be concluded.
 */
import type { SlotState } from './slot-state.js';

/**
 * What `GET /slots` said of each slot by id: the tokens in its KV, or `null` for the short form (no task ran on
 * it since the server started). A slot missing from the answer is not in the map.
 */
export type ObservedSlots = ReadonlyMap<number, number | null>;

/** Parse `GET /slots` (an array of `{id, n_prompt_tokens?}`); undefined when the answer is not that. */
export function parseSlots(body: unknown): ObservedSlots | undefined {
  if (!Array.isArray(body)) return undefined;
  const slots = new Map<number, number | null>();
  for (const entry of body) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { id, n_prompt_tokens: tokens } = entry as { id?: unknown; n_prompt_tokens?: unknown };
    if (typeof id === 'number') slots.set(id, typeof tokens === 'number' ? tokens : null);
  }
  return slots;
}

/** The fields of one slot in `GET /slots` read here. */
interface SlotEntry {
  is_processing?: unknown;
  next_token?: unknown;
}

/** The slot's entry in a `GET /slots` answer that is a slot list. */
function slotEntry(body: unknown[], id: number): SlotEntry | undefined {
  return body.find((e) => typeof e === 'object' && e !== null && (e as { id?: unknown }).id === id) as
    SlotEntry | undefined;
}

/** A task `GET /slots` shows running: its slot, its task id and the tokens now in its KV, where the server says. */
export interface RunningTask {
  slot: number;
  task?: number;
  tokens?: number;
}

/** The tasks `GET /slots` shows running (undefined when the answer is not a slot list). */
export function runningTasks(body: unknown): RunningTask[] | undefined {
  if (!Array.isArray(body)) return undefined;
  const running: RunningTask[] = [];
  for (const e of body as unknown[]) {
    if (typeof e !== 'object' || e === null || (e as SlotEntry).is_processing !== true) continue;
    const { id, id_task: task, n_prompt_tokens: tokens } = e as Record<string, unknown>;
    if (typeof id === 'number')
      running.push({
        slot: id,
        ...(typeof task === 'number' && { task }),
        ...(typeof tokens === 'number' && { tokens }),
      });
  }
  return running;
}

/**
 * The latest task id a `GET /slots` answer shows on any slot (slots keep their last task's id after it ends), or −1
 * when no slot ran a task since the server started; undefined when the answer is not a slot list. Task ids only
 * grow on one server: a lower one than seen before means it started again since.
 */
export function lastTaskShown(body: unknown): number | undefined {
  if (!Array.isArray(body)) return undefined;
  let last = -1;
  for (const e of body as unknown[]) {
    const task = typeof e === 'object' && e !== null ? (e as { id_task?: unknown }).id_task : undefined;
    if (typeof task === 'number') last = Math.max(last, task);
  }
  return last;
}

/** Whether `GET /slots` shows the slot processing a task (undefined when the answer is not a slot list). */
export function slotProcessing(body: unknown, id: number): boolean | undefined {
  return runningTasks(body)?.some((t) => t.slot === id);
}

/**
 * Where the server put a task sent without a pin: the slot of the one task running `now` that was not running
 * `before` the launch (a new task id on a slot counts: the task there before has ended). A slot where another of
 * our tasks was sent but not yet seen running `before` does not count: that may be that task, taken up late. With
 * `minTokens`, neither does a task whose KV holds fewer tokens (a small task started at the same moment: the one
 * sought brought back a conversation at least that long). 'not yet' while no such task shows; undefined when it
 * cannot be told (several, or no slot list).
 */
export function slotOfNewTask(
  before: readonly RunningTask[],
  now: readonly RunningTask[] | undefined,
  ourPendingSlots: readonly number[],
  minTokens = 0,
): number | 'not yet' | undefined {
  if (!now) return undefined;
  const started = now.filter(
    (t) =>
      !before.some((b) => b.slot === t.slot && b.task === t.task) &&
      !(ourPendingSlots.includes(t.slot) && !before.some((b) => b.slot === t.slot)) &&
      (t.tokens === undefined || t.tokens >= minTokens),
  );
  if (started.length > 1) return undefined;
  return started[0]?.slot ?? 'not yet';
}

/**
 * Where a task sent without a pin ran when it ended before `GET /slots` showed it running (a short answer, or one
 * whose end the proxy has not read yet): the one idle slot whose latest task is newer than `newerThan` (the latest
 * task id shown before the launch), whose KV holds at least `minTokens` (see slotOfNewTask), and where none of our
 * other tasks was sent. undefined when none or several do, or the answer is not a slot list.
 */
export function slotEndedSince(
  body: unknown,
  newerThan: number,
  ourPendingSlots: readonly number[],
  minTokens: number,
): number | undefined {
  return oneIdleSlotSince(
    body,
    newerThan,
    (id, kvTokens) => typeof id === 'number' && !ourPendingSlots.includes(id) && kvTokens >= minTokens,
  );
}

/**
 * Where the task marked with `seed` runs or ran (see task-mark.ts): the one slot whose latest task shows that seed in
 * its `params`, running it (`running`) or idle after it (a slot shows its last task's parameters until the next one,
 * through an idle-slot clearing too). undefined when no slot or several show it, or the answer is not a slot list.
 */
export function slotOfMarkedTask(body: unknown, seed: number): { slot: number; running: boolean } | undefined {
  if (!Array.isArray(body)) return undefined;
  const marked = (body as unknown[]).filter((e) => {
    const params = (e as { params?: unknown } | null)?.params;
    return typeof params === 'object' && params !== null && (params as { seed?: unknown }).seed === seed;
  }) as Array<{ id?: unknown; is_processing?: unknown }>;
  const [entry] = marked;
  if (marked.length !== 1 || typeof entry?.id !== 'number') return undefined;
  return { slot: entry.id, running: entry.is_processing === true };
}

/**
 * The slot an ended task of ours ran on: the one idle slot whose latest task is newer than `newerThan` (the latest
 * task id shown before the launch) and whose KV holds `tokens` (what the answer left, give or take a stop token).
 * undefined when none or several do, or the answer is not a slot list.
 */
export function slotLeftBy(body: unknown, tokens: number, newerThan: number): number | undefined {
  return oneIdleSlotSince(body, newerThan, (_id, kvTokens) => Math.abs(kvTokens - tokens) <= TOKEN_SLACK);
}

/**
 * The id of the one idle slot whose latest task is newer than `newerThan` and that `fits` (its id as shown, the
 * tokens in its KV); undefined when none or several do, or the answer is not a slot list.
 */
function oneIdleSlotSince(
  body: unknown,
  newerThan: number,
  fits: (id: unknown, kvTokens: number) => boolean,
): number | undefined {
  if (!Array.isArray(body)) return undefined;
  const found = (body as unknown[]).filter((e) => {
    const { id, is_processing, id_task, n_prompt_tokens } = (e ?? {}) as Record<string, unknown>;
    return (
      is_processing === false &&
      typeof id_task === 'number' &&
      id_task > newerThan &&
      typeof n_prompt_tokens === 'number' &&
      fits(id, n_prompt_tokens)
    );
  });
  const id = found.length === 1 ? (found[0] as { id?: unknown }).id : undefined;
  return typeof id === 'number' ? id : undefined;
}

/**
 * The tokens a slot's task still generates before it reaches its `n_predict` (`next_token[0].n_remain`), while it is
 * generating; undefined when the slot is not generating, has no limit (-1), or the answer does not say.
 */
export function slotTokensLeft(body: unknown, id: number): number | undefined {
  if (!Array.isArray(body)) return undefined;
  const entry = slotEntry(body, id);
  const next = Array.isArray(entry?.next_token)
    ? (entry.next_token[0] as { n_remain?: unknown; n_decoded?: unknown })
    : undefined;
  if (entry?.is_processing !== true || typeof next?.n_remain !== 'number' || typeof next.n_decoded !== 'number')
    return undefined;
  return next.n_remain >= 0 && next.n_decoded > 0 ? next.n_remain : undefined;
}

export type SlotVerdict =
  /** The slot holds what we believe, or the server does not say. */
  | 'confirmed'
  /** The slot is empty while another slot we believe full still holds its content: the server clears idle slots. */
  | 'cleared-idle'
  /** Every slot we believe full is empty: the server restarted (or erased them all). */
  | 'restarted'
  /** The slot holds something else: another client used it. */
  | 'replaced';

/** Tokens may differ by a stop token counted on one side only. */
const TOKEN_SLACK = 2;

/**
 * Judge the target slot (and, for context, the backend's other slots) against what the proxy believes they hold.
 * Pure: `slots` are the backend's slots for this model with their believed content; `clearsIdleSlots`: the backend
 * is known to clear idle slots, where an emptied slot is what a task start does (a restart shows slots that ran no
 * task since, the short form).
 */
export function judgeSlot(
  target: SlotState,
  slots: readonly SlotState[],
  observed: ObservedSlots,
  clearsIdleSlots = false,
): SlotVerdict {
  const content = target.content;
  const tokens = observed.get(target.id);
  if (tokens === undefined || content?.nTokens === undefined) return 'confirmed';
  // The short form: no task ran on the slot since the server started. Fine for a slot we only restored into; a
  // slot that served our request must have run one, so the server started again since.
  if (tokens === null) return content.restored ? 'confirmed' : 'restarted';
  if (Math.abs(tokens - content.nTokens) <= TOKEN_SLACK) return 'confirmed';
  if (tokens > 0) return 'replaced';
  if (clearsIdleSlots) return 'cleared-idle';
  const othersStillFull = slots.some((s) => s !== target && s.content?.nTokens && (observed.get(s.id) ?? 0) > 0);
  return othersStillFull ? 'cleared-idle' : 'restarted';
}
