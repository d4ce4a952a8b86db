/**
 * SAVE_POLICY as one object, chosen once by createProxy: every question whose answer depends on the policy is asked
 * here, so no other module compares the policy's name or relies on a dependency being absent.
 *
 * - `always` (the seed): every big answer is saved at once; every unsaved big content is saved before it is
 *   overwritten; any matching entry is restored; the entry with the best ratio wins; nothing is learnt.
 * - `smart`: save what would be lost, when it would be lost (the eviction, the model swap, write-behind in the idle
 *   time, shutdown), let go of growth cheaper to prefill again, restore only what pays off, and learn the speeds.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { ResaveRent } from './resave-rent.js';
import type { RestoreEconomics } from './restore-economics.js';
import { NEVER_SKIP, skipBelowFloor, skipWhenCheaperToPrefill } from './save-skip.js';
import type { SkipSave } from './save-skip.js';
import { saveOnShutdown } from './shutdown-saves.js';
import type { ShutdownSaveDeps } from './shutdown-saves.js';
import type { CacheOpResult, CachePolicy } from './slot-cache.js';
import { unsavedBigContent } from './slot-planner.js';
import type { DiskMatch } from './slot-state.js';
import { NO_ANSWER_SAVER, WriteBehindSaver } from './write-behind.js';
import type { AnswerSaver, WriteBehindDeps } from './write-behind.js';

/** SAVE_POLICY's values. */
export type SavePolicyName = Config['savePolicy'];

/** The figures of an answer the policy may learn from (llama.cpp's `timings`). */
export interface AnswerTimings {
  prompt_n?: number;
  prompt_ms?: number;
  cache_n?: number;
}

export interface SavePolicy extends CachePolicy {
  readonly name: SavePolicyName;
  /** Where a request waits for the save (eviction, model swap): the unsaved content let go instead, and why. */
  readonly skipSave: SkipSave;
  /** In the idle time (write-behind, shutdown), where nobody waits for the save: the unsaved content let go. */
  readonly idleSkipSave: SkipSave;
  /** Whether to restore `match` into a slot that already holds `slotLcp` blocks of the prompt. */
  restoreWorthIt(model: string, match: DiskMatch, slotLcp: number): boolean;
  /** Among the entries above LCP_TH: the best ratio (the seed) or the longest prefix. */
  readonly prefer: 'ratio' | 'lcp';
  /** Whether entries of this model are restored at all (smart: off once restores of it brought no reuse). */
  restoresEnabled(model: string): boolean;
  /**
   * Whether an answer's unsaved big content is saved right after the answer, on the request's own time (always), or
   * only when another model's request is about to unload it (smart; write-behind saves it otherwise).
   */
  savesAfterAnswer(swapComing: () => boolean): boolean;
  /** What a finished answer teaches: the prefill speed, and whether the restore before it brought its reuse. */
  learnFromAnswer(
    model: string,
    answer: { timings: AnswerTimings | undefined; restore: CacheOpResult | undefined; shared: boolean },
  ): void;
  /** The saver of answers' new states in the backend's idle time (smart), or one that saves nothing (always). */
  createAnswerSaver(deps: Omit<WriteBehindDeps, 'unsaved'>): AnswerSaver;
  /** The last saves before the proxy exits (smart: what only the idle slots hold), or none (always). */
  saveOnShutdown(deps: ShutdownSaveDeps, signal: AbortSignal): Promise<void>;
  /**
   * Whether a conversation the server's RAM cache keeps may reach the disk only within the loss window rather than at
   * each answer (smart; see RamRescues), and, on a backend that keeps idle slots, come back from that cache rather
   * than from disk (pinned-ram-tier.ts). The seed saves every answer and restores from disk.
   */
  readonly leavesToServerRam: boolean;
}

export interface SavePolicyDeps {
  /** SAVE_MIN_NEW_TOKENS. */
  minNewTokens: number;
  /** WORDS_PER_BLOCK: the tokens a block is worth when an entry does not say. */
  wordsPerBlock: number;
  /** CACHE_DIR (null when unset): lineage deletes superseded files there, so it needs one. */
  cacheDir: string | null;
  economics: RestoreEconomics;
  rent: ResaveRent;
  /** Whether an entry with this key is on disk (indexed). */
  onDisk: (key: string) => boolean;
  log: Logger;
}

/** The policy named by SAVE_POLICY. */
export function createSavePolicy(name: SavePolicyName, deps: SavePolicyDeps): SavePolicy {
  return name === 'smart' ? smartPolicy(deps) : alwaysPolicy();
}

const IGNORE_SPEEDS: CachePolicy['speeds'] = { noteSaveSpeed: () => undefined, noteRestoreSpeed: () => undefined };

function alwaysPolicy(): SavePolicy {
  return {
    name: 'always',
    skipSave: NEVER_SKIP,
    idleSkipSave: NEVER_SKIP,
    restoreWorthIt: () => true,
    prefer: 'ratio',
    restoresEnabled: () => true,
    savesAfterAnswer: () => true,
    learnFromAnswer: () => undefined,
    speeds: IGNORE_SPEEDS,
    retiresParents: false,
    createAnswerSaver: () => NO_ANSWER_SAVER,
    saveOnShutdown: () => Promise.resolve(),
    leavesToServerRam: false,
  };
}

function smartPolicy(deps: SavePolicyDeps): SavePolicy {
  const { economics, log } = deps;
  const skipSave = skipWhenCheaperToPrefill({
    minNewTokens: deps.minNewTokens,
    onDisk: deps.onDisk,
    economics,
    rent: deps.rent,
  });
  // In the idle time nobody waits for a save: only the SAVE_MIN_NEW_TOKENS floor lets content go.
  const idleSkipSave = skipBelowFloor({ minNewTokens: deps.minNewTokens, onDisk: deps.onDisk });
  return {
    name: 'smart',
    skipSave,
    idleSkipSave,
    restoreWorthIt(model, match, slotLcp) {
      // Only for a longer prefix than the slot has, and only when it is cheaper than prefilling the gain.
      if (match.lcp <= slotLcp) return false;
      const tokensPerBlock = match.tokens ? match.tokens / Math.max(1, match.blockCount) : deps.wordsPerBlock * 1.3;
      const restoreTokens = match.tokens ?? match.blockCount * tokensPerBlock;
      return economics.restoreWorthIt(model, restoreTokens, (match.lcp - slotLcp) * tokensPerBlock);
    },
    prefer: 'lcp',
    restoresEnabled: (model) => economics.restoresEnabled(model),
    savesAfterAnswer: (swapComing) => swapComing(),
    learnFromAnswer(model, { timings, restore, shared }) {
      economics.notePrefill(model, timings?.prompt_n, timings?.prompt_ms, shared);
      if (!restore?.ok || restore.tokens === undefined) return;
      if (economics.noteRestoreOutcome(model, restore.tokens, timings?.cache_n) === 'disabled') {
        log.warn(
          { model, restored_tokens: restore.tokens, cache_n: timings?.cache_n },
          'restores of this model bring no reuse (sliding-window or hybrid model?); not restoring it any more',
        );
      }
    },
    speeds: economics,
    retiresParents: Boolean(deps.cacheDir),
    createAnswerSaver: (saverDeps) =>
      new WriteBehindSaver({
        ...saverDeps,
        // When the save would delay someone, the eviction's own rule; in the idle time only the floor.
        unsaved: (slot, busy) => unsavedBigContent(slot, busy ? skipSave : idleSkipSave),
      }),
    saveOnShutdown,
    leavesToServerRam: true,
  };
}
