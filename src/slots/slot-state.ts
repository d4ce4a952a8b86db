/** What the proxy believes about each backend slot. Written only by the slot pool (slot-pool.ts); read everywhere. */
import type { RamCacheHit } from '../backend/server-ram-cache.js';
import type { SkipReason } from './save-skip.js';

/** The conversation state a slot holds, as far as the proxy knows. */
export interface SlotContent {
  /** Cache key of the prompt that filled the slot (also the save file's basename). */
  key: string;
  model: string;
  /** Block hashes of that prompt, for residency matching. */
  blocks: readonly string[];
  /** Length of the canonical prompt text in code points (the meta's `prefix_len`). */
  prefixLen: number;
  /** Big prompts are worth keeping; small ones are not. */
  big: boolean;
  /** A cache file on this slot's backend holds exactly this content (SlotPool.markSaved / markUnsaved). */
  readonly saved: boolean;
  /** Tokens in the slot (prompt + reply), when the backend said. */
  nTokens?: number;
  /** The entry on disk this content extends (same conversation, earlier): replaced once this content is saved. */
  parentKey?: string;
  /** Tokens the parent entry holds: how much of this content a restore of the parent would bring back. */
  parentTokens?: number;
  /** Identity of the model that computed it (see LlamaClient.fingerprint). */
  fingerprint?: string;
  /** Put there by a restore, with no task run on the slot since (GET /slots then shows nothing of it). */
  restored?: true;
  /** The session of the request that filled it, when it named one (session affinity). */
  session?: string;
  /**
   * Requests of this conversation answered on this slot in a row: 1 for content no later request has continued yet
   * (a one-off such as a title or Qwen Code's memory extraction, or a conversation's first turn), more once it was
   * extended. Absent (content put there by a restore): treated as a conversation. See chooseVictim.
   */
  turns?: number;
}

/** One slot of one model on one backend. */
export interface SlotState {
  /** Index of the backend in the configured list. */
  readonly backend: number;
  /** Model whose server owns this slot ('' on a plain llama-server, where every model name maps to one server). */
  readonly model: string;
  readonly id: number;
  readonly busy: boolean;
  /** Busy with background work (a write-behind save), not with a request: free again within that one save. */
  readonly background?: true;
  /** Beyond the server's real `total_slots`: never used (ids would wrap onto another slot). */
  readonly disabled: boolean;
  /** Monotonic tick of the last acquire or release (LRU order). */
  readonly lastUsed: number;
  /** When a request last took or gave back the slot (milliseconds since the epoch), for the status API. */
  readonly lastUsedAt?: number;
  readonly content?: SlotContent;
}

/** The slot a request needs, described without HTTP. */
export interface SlotRequest {
  model: string;
  key: string;
  blocks: readonly string[];
  big: boolean;
  /** The client's session id: among equally good resident slots, the one this session filled wins. */
  session?: string;
}

/** A disk entry that matches the request (from the prefix index). */
export interface DiskMatch {
  key: string;
  backend: number;
  lcp: number;
  ratio: number;
  /** Tokens in the file, when known (the meta's n_tokens). */
  tokens?: number;
  /** Block count of the entry: with `tokens`, how many tokens a block is worth. */
  blockCount: number;
}

/** What the scheduler decided for one request. */
export interface SlotPlan {
  slot: SlotState;
  /** The slot's content must be saved before it is overwritten (big, not on disk yet). */
  saveFirst?: SlotContent;
  /** The slot's unsaved big content is overwritten without a save (it extends an entry on disk), and why. */
  skippedSave?: { content: SlotContent; reason: SkipReason };
  /** Restore this entry into the slot before forwarding. */
  restore?: DiskMatch;
  /** The slot already holds this much of the prompt (in blocks); no restore needed. */
  resident?: { lcp: number; ratio: number };
  /**
   * Sent without a pin (`id_slot` −1) so that the server's own lookup serves the prompt from its RAM cache (see
   * leavePlacementToServer). The server picks the slot; the proxy learns which after the launch and moves the
   * request's slot there (SlotPool.moveTo).
   */
  unpinned?: true;
  /**
   * For this content of the server's RAM cache, which the request continues and disk has no better copy of: sent
   * unpinned where the server clears idle slots (leavePlacementToServer), pinned to a slot holding another prompt
   * where it keeps them (reachRamByPin).
   */
  fromServerCache?: RamCacheHit;
}
