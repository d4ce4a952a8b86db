/**
 * Saves left to the server's RAM cache while that cache has room to spare: it is the first tier, disk the second,
 * and a conversation has to reach the disk only within the loss window (IDLE_SAVE_SECONDS) after its last answer, not
 * at every answer. On a backend that keeps its idle slots (`-np N`) the same holds for the launch pinned to the slot
 * that pushes it out (pinned-ram-tier.ts); the text below tells the case of one that clears them (llama-server's
 * default configuration).
 *
 * Each launch there moves the idle slots' contents into the server's RAM cache. A save booked for a task's end (see
 * BookedSaves) writes the answer's state to disk before that, and holds the server's loop for the write while other
 * requests wait; under contention every answer is so written, though the conversation's next turn makes it stale
 * seconds later. So a big task whose state the RAM cache will keep gets no booked save, and no save before a
 * launch clears it (`leavesToRam`, `leftToRam`). Once a launch has moved it into the RAM cache unsaved (`cleared`),
 * it waits there: a next turn that takes it back (`taken`) needs nothing written. Otherwise, shortly before the
 * window ends, the proxy brings it back into a slot and saves it (the `rescue` given: the same request again,
 * without a pin, or pinned where the server keeps idle slots, and with `n_predict: 0`, served from the RAM cache in
 * the iteration that takes it up; on the real server a 4.2k-token conversation came back in 10 ms, `cache_n` 4227 +
 * `prompt_n` 1). On the chat and Responses routes the replay continues the answer's text, on the completion routes
 * it follows a text prompt (see flow.replayOf), so the state so saved holds the reply, unless replays with the text
 * were seen not to bring it back (ReplayReplies); elsewhere it is the request's prompt alone, and a turn restored
 * from it prefills that reply again. `close()` rescues what is left at shutdown.
 * Behind llama-swap or a router a model's unload takes its RAM cache along: a request about to unload it rescues
 * what waits there first (`rescueNow`), and what an unload elsewhere took is given up (`modelsLoaded`).
 */
import type { Logger } from 'pino';
import type { BackendCall } from '../backend/llama-client.js';
import { shortKey } from '../cache/meta-file.js';
import type { SlotContent, SlotState } from './slot-state.js';
import { EXPLORE_EVERY, RamTierPayoff } from './ram-tier-payoff.js';
import type { RamTierVerdict } from './ram-tier-payoff.js';
import { RECHECK_EVERY, ReplayReplies } from './replay-reply.js';

/** The RAM tier of a backend as the status API shows it. */
export interface RamTierState extends RamTierVerdict {
  /** Models whose replays go without the answer's text, which did not bring the reply back (ReplayReplies). */
  replaysWithoutText: string[];
}

/** A replay's backend path and body, and whether it carries the answer's text. */
export interface ReplayCall extends BackendCall {
  withReply: boolean;
}

/**
 * The request again, for the server to serve from its RAM cache: the backend call, built when needed, with `idSlot`
 * as its pin (−1: where the server puts it), `mark` as its seed, to tell its task apart on `GET /slots`
 * (task-mark.ts; a replay generates nothing, so the mark may replace a seed of the client's), and, when `withReply`
 * and the route can carry it, the answer's text (see ReplayReplies).
 */
export type Replay = (idSlot: number, mark: number | undefined, withReply: boolean) => ReplayCall;
/** The replay a rescue sends, built as it is sent (its form chosen then, see RamRescues.run). */
export type ChosenReplay = (idSlot: number, mark?: number) => ReplayCall;

/**
 * Bring `content` back into a slot of `backend` with `replay` and save it; true once it is on disk, 'later' when it
 * was not tried (no room for it while tasks run: a try again does not count as one), 'lost' when its model was
 * unloaded (behind llama-swap or a router): the RAM cache went with it, and a replay would only load the model again.
 */
export type Rescue = (backend: number, content: SlotContent, replay: ChosenReplay) => Promise<RescueOutcome>;
export type RescueOutcome = boolean | 'later' | 'lost';

export interface RamRescueDeps {
  /**
   * The loss window (IDLE_SAVE_SECONDS): the latest state is on disk this long after the answer at the latest. 0:
   * nothing is left to the RAM cache (no write-behind, or a policy that saves every answer).
   */
  windowMs: number;
  rescue: Rescue;
  log: Logger;
  /** The backend's URL, for the log; its index where not given. */
  describeBackend?: (backend: number) => string;
  now?: () => number;
}

interface Left {
  backend: number;
  replay: Replay;
  answeredAt: number;
  /** The tokens its answer generated, when the server said (see ReplayReplies). */
  replyTokens?: number;
  /** The trust it was left under (see distrust). */
  trust: number;
  /** Told that it waits for room past its loss window (once). */
  lateTold?: boolean;
}

/** Started this long before the window ends: a rescue waits for the launch gate and takes a save's time. */
const LEAD_MS = 500;
/** A rescue that failed (the slot taken at once, a restart) is tried again this much later, this many times. */
const RETRY_MS = 200;
const TRIES = 3;

export class RamRescues {
  /** Big tasks in flight whose state is left to the RAM cache, by slot. */
  private readonly running = new Map<SlotState, Pick<Left, 'backend' | 'replay'>>();
  /**
   * Contents answered on such tasks, with the request to replay (its body kept alive: dropped once the content is
   * taken back or saved); weak, so a content nobody holds any more is gone with it.
   */
  private readonly left = new WeakMap<SlotContent, Left>();
  /** Contents in the RAM cache only, with their rescue timer. */
  private readonly pending = new Map<SlotContent, NodeJS.Timeout>();
  private readonly rescuing = new Set<Promise<boolean>>();
  /** The rescues asked for at once (rescueNow, saveAllNow, close), one batch after another. */
  private batches: Promise<unknown> = Promise.resolve();
  private closed = false;
  private trust = 0;
  private readonly now: () => number;
  /** Whether leaving answers pays, by backend (see RamTierPayoff). */
  private readonly payoff = new RamTierPayoff();
  /** Whether replays carry the answer's text, by backend and model. */
  private readonly replies = new ReplayReplies();

  constructor(private readonly deps: RamRescueDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Whether anything may be left to the RAM cache at all. */
  get enabled(): boolean {
    return this.deps.windowMs > 0 && !this.closed;
  }

  /**
   * Whether the next big task on `backend` whose state the RAM cache could keep is left there: while that pays (see
   * RamTierPayoff), and now and then when it does not. A change of verdict is logged.
   */
  leaveNext(backend: number): boolean {
    const { leave, verdict, changed } = this.payoff.leaveNext(backend);
    if (changed) {
      const { left, rescued, rescueMs, saveMs } = verdict;
      const seen = {
        backend: this.deps.describeBackend?.(backend) ?? backend,
        left,
        rescued,
        rescue_ms: Math.round(rescueMs),
        save_ms: Math.round(saveMs),
      };
      if (verdict.pays) this.deps.log.info(seen, "answers are left to the server's RAM cache again: it pays");
      else
        this.deps.log.info(
          { ...seen, explore_every: EXPLORE_EVERY },
          "leaving answers to the server's RAM cache does not pay here (their rescues cost more than saving them): saving them instead, leaving one now and then to notice a change",
        );
    }
    return leave;
  }

  /**
   * Whether leaving answers to `backend`'s RAM cache pays now, on what that is judged, and the models whose replays
   * go without the answer's text (the status API's).
   */
  ramTier(backend: number): RamTierState {
    return { ...this.payoff.verdict(backend), replaysWithoutText: this.replies.withoutText(backend) };
  }

  /** A rescue on `backend` held its slot or the launch gate `rescueMs`, `saveMs` of it the save (see RamTierPayoff). */
  noteRescueCost(backend: number, rescueMs: number, saveMs: number): void {
    this.payoff.noteRescue(backend, rescueMs, saveMs);
  }

  /** A big task starts on `slot` whose state the RAM cache will keep: `replay` brings it back if it must be saved. */
  taskRunning(slot: SlotState, replay: Replay): void {
    this.running.set(slot, { backend: slot.backend, replay });
  }

  /** The slot's running task is left to the RAM cache: no save is booked for its end. */
  leavesToRam(slot: SlotState): boolean {
    return this.running.has(slot);
  }

  /**
   * The slot's task ended, leaving `content` (undefined: nothing known, nothing to rescue) after generating
   * `replyTokens`.
   */
  taskEnded(slot: SlotState, content: SlotContent | undefined, replyTokens?: number): void {
    const task = this.running.get(slot);
    this.running.delete(slot);
    if (task && content && !content.saved) {
      this.left.set(content, {
        ...task,
        answeredAt: this.now(),
        trust: this.trust,
        ...(replyTokens !== undefined && { replyTokens }),
      });
      this.payoff.noteLeft(task.backend);
    }
  }

  /**
   * A rescue's replay of `content` ran, with the answer's text or without, and reused `reused` tokens from the RAM
   * cache (`cache_n`): with the text, that tells whether the text brings the reply back (ReplayReplies). A change is
   * logged.
   */
  noteReplayed(content: SlotContent, withReply: boolean, reused: number | undefined): void {
    const left = this.left.get(content);
    const replyTokens = left?.replyTokens;
    if (!left || replyTokens === undefined || !withReply || reused === undefined || content.nTokens === undefined)
      return;
    const changed = this.replies.note(left.backend, content.model, {
      stateTokens: content.nTokens,
      replyTokens,
      reused,
    });
    if (!changed) return;
    const seen = {
      backend: this.deps.describeBackend?.(left.backend) ?? left.backend,
      model: content.model,
      reply_tokens: replyTokens,
      reused_of_reply: changed.reusedOfReply,
    };
    if (changed.comesBack)
      this.deps.log.info(seen, "a replay with the answer's text brings its tokens back again: rescues carry it");
    else
      this.deps.log.info(
        { ...seen, recheck_every: RECHECK_EVERY },
        "a replay with the answer's text did not bring back most of its tokens (the text tokenizes differently from what the model generated): rescues replay the prompt alone, and the next turn prefills the reply",
      );
  }

  /** A launch may clear this content unsaved: the RAM cache takes it, and a rescue brings it to disk in time. */
  leftToRam(content: SlotContent | undefined): boolean {
    return content !== undefined && !this.closed && this.left.get(content)?.trust === this.trust;
  }

  /**
   * The RAM cache did not hold what the proxy believed (a miss): what is still in a slot is saved before a launch
   * clears it, as if never left (what was cleared already keeps its rescue).
   */
  distrust(): void {
    this.trust++;
  }

  /** A launch moved this content into the server's RAM cache; unsaved and left there, it is rescued in time. */
  cleared(content: SlotContent): void {
    const left = this.left.get(content);
    if (!left || content.saved || this.closed || this.pending.has(content)) return;
    const due = Math.max(0, left.answeredAt + this.deps.windowMs - LEAD_MS - this.now());
    this.arm(content, due, TRIES);
  }

  /** Whether this content is still left to the RAM cache unsaved (not taken back, not saved). */
  stillLeft(content: SlotContent): boolean {
    return this.left.has(content) && !content.saved;
  }

  /** A request takes this content back from the RAM cache (its conversation continued): nothing to save. */
  taken(content: SlotContent): void {
    this.disarm(content);
    this.left.delete(content);
  }

  /**
   * A request is about to unload `model` from `backend` (llama-swap, or a router at its `--models-max`): its RAM cache
   * goes with it, so what waits there is rescued now, one at a time, and the rescues running are waited for.
   */
  async rescueNow(backend: number, model: string): Promise<void> {
    await this.rescueWaiting(this.leftOn(backend, (m) => m === model));
  }

  /** Rescue everything that waits now (the admin API's save): how many contents reached the disk, how many not. */
  saveAllNow(): Promise<{ saved: number; notSaved: number }> {
    return this.rescueWaiting(() => true);
  }

  /**
   * The models loaded on `backend` now: what waits in the RAM cache of a model no longer loaded went with its unload
   * (llama-swap's ttl, another client's request). Given up and told, so that no rescue loads the model again later.
   */
  modelsLoaded(backend: number, loaded: ReadonlySet<string>): void {
    for (const content of [...this.pending.keys()].filter(this.leftOn(backend, (m) => !loaded.has(m)))) {
      this.disarm(content);
      this.lost(content);
    }
  }

  /** Contents left on `backend` by models that `model` picks. */
  private leftOn(backend: number, model: (model: string) => boolean): (content: SlotContent) => boolean {
    return (content) => model(content.model) && this.left.get(content)?.backend === backend;
  }

  /**
   * Rescue the waiting contents `which` picks now, one at a time, once the rescues running have ended. Such batches
   * run one after another: a second request for another model must not let the swap happen while the first one's
   * rescues still run.
   */
  private rescueWaiting(which: (content: SlotContent) => boolean): Promise<{ saved: number; notSaved: number }> {
    const batch = this.batches.then(() => this.rescueBatch(which));
    this.batches = batch.catch(() => undefined);
    return batch;
  }

  private async rescueBatch(which: (content: SlotContent) => boolean): Promise<{ saved: number; notSaved: number }> {
    await Promise.allSettled([...this.rescuing]);
    // A rescue's launch may clear another content left there: it is rescued in its turn (each tried once).
    const tried = new Set<SlotContent>();
    let saved = 0;
    for (;;) {
      const content = [...this.pending.keys()].find((c) => which(c) && !tried.has(c));
      if (!content) return { saved, notSaved: tried.size - saved };
      tried.add(content);
      this.disarm(content);
      if (await this.run(content, 1)) saved++;
    }
  }

  private lost(content: SlotContent): void {
    this.left.delete(content);
    this.deps.log.warn(
      { key: shortKey(content.key), model: content.model, tokens: content.nTokens },
      "a conversation left to the server's RAM cache was lost when its model was unloaded (llama-swap's ttl, or a request from elsewhere); its next turn prefills what disk lacks",
    );
  }

  /** Contents in the servers' RAM caches only, waiting for their rescue (told when a shutdown runs out of time). */
  get waiting(): number {
    return this.pending.size;
  }

  /** Shutdown: rescue what waits now, one at a time, and wait for rescues running. */
  async close(): Promise<void> {
    this.closed = true;
    await this.rescueWaiting(() => true);
    // A timer may have started a rescue while the batch ran: none may still write once the proxy has closed. Closed,
    // no rescue is armed again, so this ends.
    while (this.rescuing.size > 0) await Promise.allSettled([...this.rescuing]);
  }

  private disarm(content: SlotContent): void {
    clearTimeout(this.pending.get(content));
    this.pending.delete(content);
  }

  private arm(content: SlotContent, ms: number, tries: number): void {
    const timer = setTimeout(() => {
      this.pending.delete(content);
      const run = this.run(content, tries);
      this.rescuing.add(run);
      void run.finally(() => this.rescuing.delete(run));
    }, ms);
    timer.unref();
    this.pending.set(content, timer);
  }

  /** One try (and the next ones armed); true once the content is on disk. */
  private async run(content: SlotContent, tries: number): Promise<boolean> {
    const left = this.left.get(content);
    if (!left || content.saved) return content.saved;
    // Its form is chosen as it is sent, not now: rescues queue (at the launch gate, for a slot), and one ahead of it
    // that carried the answer's text may tell meanwhile whether the text brings the reply back.
    const replay: ChosenReplay = (idSlot, mark) =>
      left.replay(idSlot, mark, this.replies.withReply(left.backend, content.model));
    const saved = await this.deps.rescue(left.backend, content, replay).catch(() => false);
    if (saved === true || content.saved) {
      this.left.delete(content);
      return true;
    }
    if (saved === 'lost') {
      this.lost(content);
      return false;
    }
    if (saved === 'later' && !this.closed) {
      if (!left.lateTold && this.now() > left.answeredAt + this.deps.windowMs) {
        left.lateTold = true;
        this.deps.log.warn(
          { key: shortKey(content.key), model: content.model, tokens: content.nTokens },
          "a conversation left to the server's RAM cache waits past its loss window for a slot to come back to (or room in the KV buffer); a restart now would lose it",
        );
      }
      this.arm(content, RETRY_MS, tries);
      return false;
    }
    if (tries > 1 && !this.closed) {
      this.arm(content, RETRY_MS, tries - 1);
      return false;
    }
    this.deps.log.warn(
      { key: shortKey(content.key), model: content.model, tokens: content.nTokens },
      "a conversation left to the server's RAM cache could not be saved to disk; a restart would lose it",
    );
    return false;
  }
}
