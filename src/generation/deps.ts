/**
 * What the generation flow works with, built once by createProxy. Each step of the flow takes only the part it
 * needs (`Pick<GenerationDeps, …>`).
 */
import type { Logger } from 'pino';
import type { BackendActivity } from '../backend/backend-activity.js';
import type { Backends } from '../backend/backends.js';
import type { SmallPromptsFirst } from '../backend/small-prompts-first.js';
import type { DiskMatcher } from '../cache/disk-match.js';
import type { PrefixIndex } from '../cache/prefix-index.js';
import type { Observer } from '../observe/observer.js';
import type { PromptAnalyzer } from '../prompt/prompt-analyzer.js';
import type { BookedSaves } from '../slots/booked-saves.js';
import type { LaunchGate } from '../slots/launch-gate.js';
import type { RamRescues } from '../slots/ram-rescue.js';
import type { ResaveRent } from '../slots/resave-rent.js';
import type { SavePolicy } from '../slots/save-policy.js';
import type { SlotCache } from '../slots/slot-cache.js';
import type { SlotPool } from '../slots/slot-pool.js';
import type { AnswerSaver } from '../slots/write-behind.js';
import type { PendingModels } from './pending-models.js';

export interface GenerationDeps {
  /** Prompt analysis that remembers earlier requests' messages (only what a conversation adds is hashed). */
  analyzer: PromptAnalyzer;
  backends: Backends;
  pool: SlotPool;
  /** Pins of the files a plan restores. */
  index: Pick<PrefixIndex, 'pin' | 'unpin' | 'get'>;
  diskMatch: DiskMatcher;
  slotCache: SlotCache;
  policy: SavePolicy;
  /** Saves each answer's new state in the backend's idle time, and before a clearing task start (smart), or nothing. */
  answerSaver: AnswerSaver;
  /** Saves asked for while a task runs, for its end, on backends that clear idle slots (booked-saves.ts). */
  bookedSaves: BookedSaves;
  /** Before a request is planned: saves before a model swap, loaded models, the model's identity (model-swap.ts). */
  prepareForModel(model: string, big: boolean): Promise<void>;
  /** Requests being handled now, by model (a request for another model behind llama-swap means a swap is coming). */
  pending: PendingModels;
  /** Prefills and slot actions running on each backend (a prefill that shared the server is not the model's speed). */
  activity: BackendActivity;
  /** One task launch at a time on backends that clear idle slots. */
  launchGate: LaunchGate;
  /** The small prompts on their way to a backend start before a big request is sent (small-prompts-first.ts). */
  smallFirst: SmallPromptsFirst;
  /** Conversations left to the server's RAM cache, saved within the loss window (ram-rescue.ts). */
  rescues: RamRescues;
  /** Growth given up by evictions that skipped their save, per older entry (the smart policy's ski rental). */
  rent: ResaveRent;
  /** Keeps each request's `chat` line for the status API, the dashboard and the metrics (src/observe/). */
  observer: Pick<Observer, 'noteRequest'>;
  log: Logger;
  /** LCP_TH and ACQUIRE_TIMEOUT. */
  lcpTh: number;
  acquireTimeoutMs: number;
}
