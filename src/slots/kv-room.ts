/**
 * Room in a unified KV buffer, as `GET /slots` shows it. In llama-server's default configuration every slot's
 * context is the whole buffer: `n_ctx` cells shared by all slots. Loading a state into a slot (a restore from disk,
 * or the server's own load from its RAM cache when it launches a task) needs a free cell per token beside what the
 * other slots hold, since the server clears its idle slots only after that load. Measured on the real server: the
 * load fails ("failed to find 12480 available cells in kv cache"); a restore answers 400 (the same message as for a
 * bad file), a RAM-cache load leaves the slot empty and the task prefills its whole prompt.
 * Pure: reads a `GET /slots` answer, decides; slot-room.ts acts.
 */

/** What the slots hold in a unified KV buffer of `nCtx` cells. */
export interface KvRoom {
  nCtx: number;
  /** Tokens in each slot's KV, by slot id (`n_prompt_tokens`; 0 for a slot that never ran a task). */
  held: ReadonlyMap<number, number>;
  /** The slots running a task (not to be emptied). */
  processing: ReadonlySet<number>;
}

/** The room a `GET /slots` answer shows; undefined when it is not a slot list with the context's size. */
export function kvRoomOf(body: unknown): KvRoom | undefined {
  if (!Array.isArray(body)) return undefined;
  let nCtx: number | undefined;
  const held = new Map<number, number>();
  const processing = new Set<number>();
  for (const entry of body as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { id, n_ctx, n_prompt_tokens, is_processing } = entry as Record<string, unknown>;
    if (typeof id !== 'number' || typeof n_ctx !== 'number') continue;
    nCtx = n_ctx;
    held.set(id, typeof n_prompt_tokens === 'number' ? n_prompt_tokens : 0);
    if (is_processing === true) processing.add(id);
  }
  return nCtx === undefined ? undefined : { nCtx, held, processing };
}

/** Cells free for a state loaded into slot `target`, whose own cells it replaces (any slot: none of them). */
export function freeCells(room: KvRoom, target?: number): number {
  let used = 0;
  for (const [id, tokens] of room.held) if (id !== target) used += tokens;
  return room.nCtx - used;
}

/**
 * The idle slots to empty, most tokens first, so that a state of `needed` tokens fits into `target` (undefined: the
 * server picks the slot), chosen among `emptiable`. Empty when it fits already, and when emptying every one of them
 * would still not make room (tasks running elsewhere hold the rest): then emptying would lose their RAM-cache copies
 * for nothing.
 */
export function slotsToEmpty(room: KvRoom, needed: number, emptiable: readonly number[], target?: number): number[] {
  let short = needed - freeCells(room, target);
  if (short <= 0) return [];
  const candidates = emptiable
    .filter((id) => id !== target && !room.processing.has(id) && (room.held.get(id) ?? 0) > 0)
    .sort((a, b) => room.held.get(b)! - room.held.get(a)!);
  const chosen: number[] = [];
  for (const id of candidates) {
    if (short <= 0) break;
    chosen.push(id);
    short -= room.held.get(id)!;
  }
  return short <= 0 ? chosen : [];
}
