/**
 * Carries out the disk side of a plan: restore an entry into a slot, save a slot's content to disk. Keeps the
 * prefix index and the meta files in step with what the backend did. Never throws: a cache failure must not fail
 * the user's request, so every outcome is returned and logged by the caller.
 */
import { stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { LlamaClient, SlotActionResult } from '../backend/llama-client.js';
import { buildMeta } from '../cache/meta-file.js';
import type { CacheMeta } from '../cache/meta-file.js';
import type { PrefixIndex } from '../cache/prefix-index.js';
import { describeCause } from '../errors.js';
import { continuesBlocks } from '../prompt/block-match.js';
import type { BackendActivity } from '../backend/backend-activity.js';
import type { RestoreEconomics } from './restore-economics.js';
import type { SlotPool } from './slot-pool.js';
import type { SlotContent, SlotState } from './slot-state.js';

export interface MetaWriter {
  write(meta: CacheMeta): Promise<void>;
  remove(key: string): Promise<void>;
}

export interface CacheOpResult {
  ok: boolean;
  /** Wall time of the call, as the request waiting for it saw it. */
  ms: number;
  /**
   * The server's own duration of the action (`timings.save_ms` / `restore_ms`): without the network and without
   * waiting for other slots' decode batch, so it measures the disk, for the economics.
   */
  serverMs?: number;
  /** Tokens saved or restored, as the backend reported. */
  tokens?: number;
  /** Bytes written or read, as the backend reported. */
  bytes?: number;
  /** Why it failed, for the log. */
  error?: string;
  /** A failed restore made the index and META_DIR forget the key (the backend cannot load that file). */
  dropped?: boolean;
  /** A failed restore taken for a lack of room in a unified KV buffer (the entry kept; see kv-room.ts). */
  noRoom?: true;
  /** A save whose token count did not match the slot's believed content: file deleted, no meta written. */
  unverified?: boolean;
  /** A save booked while the slot's task still ran (BookedSaves): the server ran it as the task ended. */
  booked?: true;
}

/** The save policy's part in the cache's work (SavePolicy). */
export interface CachePolicy {
  /** Told the speed of every successful save and restore, whoever asked for it (smart: RestoreEconomics). */
  readonly speeds: Pick<RestoreEconomics, 'noteSaveSpeed' | 'noteRestoreSpeed'>;
  /**
   * Lineage: once a save succeeds, the older entry the content extends is deleted (file, meta and index entry), so
   * a conversation keeps one file, not one per turn. Takes effect only with `cacheDir`, where the files are.
   */
  readonly retiresParents: boolean;
}

export interface SlotCacheDeps {
  clients: readonly LlamaClient[];
  /** Where what a save or restore did to a slot is recorded (the slot pool, the only writer of slot state). */
  slots: Pick<SlotPool, 'fill' | 'forget' | 'markSaved'>;
  index: PrefixIndex;
  metaStore: MetaWriter;
  wordsPerBlock: number;
  log: Logger;
  /** What the save policy asks of the cache: learn speeds or not, retire parents or not (see save-policy.ts). */
  policy: CachePolicy;
  /** Saves and restores hold the server's main loop: prefills running meanwhile are not the model's own speed. */
  activity?: BackendActivity;
  /** `CACHE_DIR` (the server's --slot-save-path), when configured: where a save that failed verification is deleted. */
  cacheDir?: string;
  /**
   * The server cleared an idle slot by itself (it saved 0 tokens of a slot believed full: see ServerBehaviour), or
   * gave it to another task before a booked save of it ran. `content` now lives only in the server's RAM cache (see
   * ServerRamCacheLedger).
   */
  onIdleSlotCleared?: (backend: number, content: SlotContent) => void;
  /** A save was verified: `tokens` of `model`'s state take `bytes` (the server's RAM cache stores the same state). */
  onStateSize?: (backend: number, model: string, tokens: number, bytes: number) => void;
  /** Milliseconds since the epoch, for meta timestamps; durations use the monotonic `performance.now()`. */
  now?: () => number;
  /** Told of every save and restore once it is over, whoever asked for it (the metrics). Must not throw. */
  onResult?: (action: 'save' | 'restore', result: CacheOpResult) => void;
}

export interface SlotCache {
  /**
   * Restore `key` into the slot. On failure the backend has emptied the slot, and so does our record; when the
   * backend says the file cannot be loaded (400 "Unable to restore slot…"), the key's entry and meta are dropped,
   * unless the answer may mean that the KV buffer had no room for it (`mayLackRoom`, see kv-room.ts): the server
   * gives the same answer for both.
   */
  restore(slot: SlotState, key: string, model: string, opts?: { mayLackRoom?: boolean }): Promise<CacheOpResult>;
  /** Save the slot's content under its key; on success record the meta, on failure drop any stale one. */
  save(slot: SlotState, content: SlotContent): Promise<CacheOpResult>;
  /**
   * Ask for a save of the slot under `key` now, while its task still runs: llama-server defers a slot action on a
   * busy slot and runs it as soon as the task ends, before any task queued later (see booked-saves.ts). The answer
   * is checked once the content is known.
   */
  book(slot: SlotState, key: string, model: string): BookedSave;
}

/** A save asked for before the slot's task ended (SlotCache.book). */
export interface BookedSave {
  /**
   * Settles once the call is over: true when the server answered (the task ended and the save ran, or the server
   * refused it), false when the call itself failed (a timeout, a lost connection), so the server may still hold it.
   */
  readonly answered: Promise<boolean>;
  /**
   * The task ended: check the save against what the slot was recorded to hold (`undefined` when the answer did not
   * end as expected) and record its meta, or delete the file. Idempotent.
   */
  settle(content: SlotContent | undefined): Promise<CacheOpResult>;
}

export function createSlotCache(deps: SlotCacheDeps): SlotCache {
  const wallClock = deps.now ?? Date.now;
  const lineageDir = deps.policy.retiresParents ? deps.cacheDir : undefined;
  // Durations: monotonic (Date.now steps with the wall clock and rounds to whole milliseconds), to 0.01 ms.
  const now = () => performance.now();
  const elapsed = (since: number) => Math.round((now() - since) * 100) / 100;

  async function heavy<T>(backend: number, action: () => Promise<T>): Promise<T> {
    const phase = deps.activity?.begin(backend);
    try {
      return await action();
    } finally {
      phase?.end();
    }
  }

  async function restore(
    slot: SlotState,
    key: string,
    model: string,
    opts: { mayLackRoom?: boolean } = {},
  ): Promise<CacheOpResult> {
    const started = now();
    const entry = deps.index.get(key);
    deps.index.pin(key);
    try {
      const res = await heavy(slot.backend, () =>
        deps.clients[slot.backend]!.slotAction(model, slot.id, 'restore', key),
      );
      if (!res.ok) {
        deps.slots.forget(slot);
        const result: CacheOpResult = {
          ok: false,
          ms: elapsed(started),
          error: `HTTP ${res.status} ${errorMessage(res.body)}`,
        };
        // The server could not load the file (missing, corrupt, another model's, or larger than the context) and
        // never will: stop offering it, or every request with this prefix pays a failed restore. Unless a save
        // re-created the entry meanwhile, or the other slots of a unified KV buffer may have held cells it needed
        // (that passes; the answer is the same): said by the caller, or told by a file still at the size its save
        // wrote (a later save of the conversation supersedes an entry kept wrongly).
        const unusable = isUnusableFile(res.status, res.body);
        const kept = unusable && (opts.mayLackRoom ? 'other slots hold tokens' : await intactFile(key, entry));
        if (kept) {
          result.noRoom = true;
          deps.log.warn(
            { key, backend: deps.clients[slot.backend]!.url, err: result.error, why: kept },
            'the server could not restore the cache file (no room in its KV buffer, as far as the proxy can tell); entry kept',
          );
        } else if (unusable && deps.index.get(key) === entry) {
          await dropMeta(key);
          deps.log.warn(
            { key, backend: deps.clients[slot.backend]!.url, err: result.error },
            'cache file cannot be restored; entry dropped',
          );
          result.dropped = true;
        }
        return result;
      }
      const meta = deps.index.get(key);
      if (!meta) deps.slots.forget(slot);
      else
        deps.slots.fill(slot, {
          key,
          model,
          blocks: meta.blocks,
          prefixLen: meta.prefix_len,
          big: true,
          saved: true,
          nTokens: num(res.body.n_restored),
          restored: true,
          ...(meta.fingerprint !== undefined && { fingerprint: meta.fingerprint }),
        });
      const result: CacheOpResult = {
        ok: true,
        ms: elapsed(started),
        ...serverMs(res.body, 'restore_ms'),
        tokens: num(res.body.n_restored),
        bytes: num(res.body.n_read),
      };
      deps.policy.speeds.noteRestoreSpeed(model, result.tokens, actionMs(result));
      return result;
    } catch (err) {
      deps.slots.forget(slot);
      return { ok: false, ms: elapsed(started), error: describeCause(err) };
    } finally {
      deps.index.unpin(key);
    }
  }

  /** 'file intact' when the entry's file is in CACHE_DIR at the size its save wrote; false when not, or not known. */
  async function intactFile(key: string, meta: CacheMeta | undefined): Promise<'file intact' | false> {
    if (!deps.cacheDir || meta?.file_bytes === undefined) return false;
    const size = await stat(join(deps.cacheDir, key)).then(
      (file) => file.size,
      () => -1,
    );
    return size === meta.file_bytes ? 'file intact' : false;
  }

  /** The server's answer to a save, or why there was none. */
  type SaveAnswer = { res: SlotActionResult } | { error: string; skipped?: true };

  /** Ask the server to save the slot under `key` (pinned meanwhile: cleanup must not delete a file being written). */
  async function postSave(slot: SlotState, key: string, model: string): Promise<SaveAnswer> {
    try {
      // Nothing to save when the model's server is gone, and asking would load it again.
      if (!(await deps.clients[slot.backend]!.isModelLoaded(model)))
        return { error: 'model not loaded', skipped: true };
      return { res: await heavy(slot.backend, () => sendSave(slot, key, model)) };
    } catch (err) {
      return { error: describeCause(err) };
    }
  }

  function sendSave(slot: SlotState, key: string, model: string): Promise<SlotActionResult> {
    return deps.clients[slot.backend]!.slotAction(model, slot.id, 'save', key);
  }

  /**
   * Check a save's answer against the content the slot is believed to hold (`undefined`: not known, as when the
   * task a booked save waited for did not end as expected), then record the meta or drop it.
   */
  async function settleSave(
    slot: SlotState,
    key: string,
    content: SlotContent | undefined,
    answer: SaveAnswer,
    started: number,
    booked = false,
  ): Promise<CacheOpResult> {
    if ('skipped' in answer) {
      // No file was written: an entry under this key stays as it was.
      deps.index.unpin(key);
      deps.slots.forget(slot);
      return { ok: false, ms: elapsed(started), error: answer.error };
    }
    let result: CacheOpResult;
    try {
      if ('error' in answer) {
        result = { ok: false, ms: elapsed(started), error: answer.error };
      } else if (!answer.res.ok) {
        result = {
          ok: false,
          ms: elapsed(started),
          error: `HTTP ${answer.res.status} ${errorMessage(answer.res.body)}`,
        };
      } else {
        const { body } = answer.res;
        result = {
          ok: true,
          ms: elapsed(started),
          ...serverMs(body, 'save_ms'),
          tokens: num(body.n_saved),
          bytes: num(body.n_written),
        };
        if (!content || content.key !== key) {
          // The task whose end the save waited for failed or was aborted: the file holds a state nobody knows.
          result = { ok: false, ms: result.ms, error: 'the answer did not end as expected: state not known' };
          await deleteFile(key);
        } else if (result.tokens === 0 && (content.nTokens ?? 1) > 0) {
          // llama-server cleared the idle slot on its own (--cache-idle-slots with a unified KV buffer): the file
          // holds nothing, so it must not be offered for restores. The content lives on only in its RAM cache.
          deps.slots.forget(slot);
          deps.onIdleSlotCleared?.(slot.backend, content);
          result = { ok: false, ms: result.ms, error: 'slot was empty: the server cleared it while idle' };
        } else if (!savedWhatWeThink(result.tokens, content.nTokens)) {
          // The slot holds something else than we believe: the server restarted, or another client used the slot.
          // The file is somebody else's conversation under this key: never offer it.
          deps.slots.forget(slot);
          // Booked: the task ended there with this content, and a task sent without a pin took the idle slot before
          // the save reached the server (see booked-saves.ts). Taking a slot moves its content to the RAM cache.
          if (booked) deps.onIdleSlotCleared?.(slot.backend, content);
          result = {
            ok: false,
            ms: result.ms,
            error: `saved ${result.tokens} tokens, expected ${content.nTokens}: the slot holds other content`,
            unverified: true,
          };
          await deleteFile(key);
        }
      }
    } finally {
      deps.index.unpin(key);
    }
    if (result.ok && content) {
      deps.policy.speeds.noteSaveSpeed(content.model, result.tokens, actionMs(result));
      if (result.tokens && result.bytes) deps.onStateSize?.(slot.backend, content.model, result.tokens, result.bytes);
      await recordMeta(slot, content, result);
    } else {
      await dropMeta(key);
    }
    return result;
  }

  async function save(slot: SlotState, content: SlotContent): Promise<CacheOpResult> {
    const started = now();
    deps.index.pin(content.key);
    const answer = await postSave(slot, content.key, content.model);
    return settleSave(slot, content.key, content, answer, started);
  }

  function book(slot: SlotState, key: string, model: string): BookedSave {
    deps.index.pin(key);
    // Sent in this very tick (no await before the request goes out): the launch that books it sends its own task
    // right after, and the server must queue the save first. The model is loaded: its task runs. The save holds
    // the server's loop only once the task has ended, so it is not marked as activity.
    const answer: Promise<SaveAnswer> = sendSave(slot, key, model).then(
      (res) => ({ res }),
      (err: unknown) => ({ error: describeCause(err) }),
    );
    let settled: Promise<CacheOpResult> | undefined;
    return {
      answered: answer.then((a) => 'res' in a),
      settle(content) {
        // Timed from here: what the request whose answer ended waits for, not its generation before.
        const started = now();
        settled ??= answer.then((a) => settleSave(slot, key, content, a, started, true)).then((r) => report('save', r));
        return settled;
      },
    };
  }

  async function recordMeta(slot: SlotState, content: SlotContent, result: CacheOpResult): Promise<void> {
    const meta = buildMeta({
      key: content.key,
      model: content.model,
      prefixLen: content.prefixLen,
      blocks: content.blocks,
      wpb: deps.wordsPerBlock,
      timestamp: wallClock() / 1000,
      backend: deps.clients[slot.backend]!.url,
      n_tokens: result.tokens,
      file_bytes: result.bytes,
      fingerprint: content.fingerprint,
    });
    deps.index.add(meta);
    deps.slots.markSaved(slot, content);
    try {
      await deps.metaStore.write(meta);
    } catch (err) {
      // The file is on disk and the index knows it; only a restart would forget it. Say so.
      deps.log.warn({ key: content.key, err: describeCause(err) }, 'meta write failed; entry kept in memory only');
      return;
    }
    if (lineageDir && content.parentKey && content.parentKey !== content.key)
      await retireParent(content.parentKey, meta, lineageDir);
  }

  /** Delete the older entry a successful save made redundant: same conversation, same disk, a prefix of the new. */
  async function retireParent(parentKey: string, child: CacheMeta, cacheDir: string): Promise<void> {
    const parent = deps.index.get(parentKey);
    if (!parent || deps.index.isPinned(parentKey) || parent.backend !== child.backend) return;
    if (!continuesBlocks(parent.blocks, child.blocks)) return;
    try {
      await unlink(join(cacheDir, parentKey));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        deps.log.warn(
          { key: parentKey, err: describeCause(err) },
          'could not delete the superseded cache file; entry kept',
        );
        return;
      }
    }
    await dropMeta(parentKey);
    deps.log.debug({ key: parentKey, by: child.key }, 'superseded cache entry removed');
  }

  /** Delete a cache file this proxy wrote but must not keep (a save that did not verify). */
  async function deleteFile(key: string): Promise<void> {
    if (!deps.cacheDir) return;
    await unlink(join(deps.cacheDir, key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT')
        deps.log.warn({ key, err: describeCause(err) }, 'could not delete an unverified cache file');
    });
  }

  async function dropMeta(key: string): Promise<void> {
    // The seed removes the meta after a failed save: the file may be partial or stale.
    deps.index.remove(key);
    try {
      await deps.metaStore.remove(key);
    } catch (err) {
      deps.log.warn({ key, err: describeCause(err) }, 'meta removal failed');
    }
  }

  const report = (action: 'save' | 'restore', result: CacheOpResult): CacheOpResult => {
    deps.onResult?.(action, result);
    return result;
  };
  return {
    restore: async (slot, key, model, opts) => report('restore', await restore(slot, key, model, opts)),
    save: async (slot, content) => report('save', await save(slot, content)),
    book,
  };
}

/**
 * A save answers `n_saved` = the tokens in the slot (prompt + generated − 1), which is what we recorded from the
 * answer's timings. A small slack covers a stop token counted on one side only; a restart or another client's
 * conversation differs by far more.
 */
function savedWhatWeThink(saved: number | undefined, believed: number | undefined): boolean {
  if (saved === undefined || believed === undefined) return true;
  return Math.abs(saved - believed) <= SAVE_TOKEN_SLACK;
}

const SAVE_TOKEN_SLACK = 2;

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** `{ serverMs }` from the answer's `timings`, or nothing when the server did not report it. */
function serverMs(body: Record<string, unknown>, field: 'save_ms' | 'restore_ms'): Pick<CacheOpResult, 'serverMs'> {
  const ms = num((body.timings as Record<string, unknown> | undefined)?.[field]);
  return ms === undefined ? {} : { serverMs: ms };
}

/** How long the action itself took: the server's own figure when it reports one, else the wall time. */
function actionMs(result: CacheOpResult): number {
  return result.serverMs ?? result.ms;
}

/**
 * llama-server's answer when a save file cannot be loaded into a slot: 400 "Unable to restore slot: No available
 * space in KV cache or invalid slot save file". Other 400s (router mode's "model is not loaded") and 5xx say
 * nothing about the file.
 */
function isUnusableFile(status: number, body: Record<string, unknown>): boolean {
  return status === 400 && /^Unable to restore slot/i.test(errorMessage(body));
}

function errorMessage(body: Record<string, unknown>): string {
  const error = body.error as { message?: unknown } | undefined;
  return typeof error?.message === 'string' ? error.message : JSON.stringify(body).slice(0, 200);
}
