/**
 * The generation flow, the same for every client API: analyse the canonical prompt the adapter gives, get a slot
 * from the scheduler, carry out its plan (save the evicted content, restore from disk), forward with `id_slot`,
 * then record what the slot holds and save per policy. One structured log line per request says what was decided
 * and how long each step took. What differs per API (validation, canonical prompt, backend call, answer shape,
 * error shape) is the adapter's (see adapter.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import { planSlot } from '../slots/slot-planner.js';
import { noteSkipped } from '../slots/save-skip.js';
import type { DiskMatch, SlotPlan } from '../slots/slot-state.js';
import { RequestLog, unplacedLine } from '../http/request-log.js';
import type { ChatLogLine } from '../http/request-log.js';
import type { GenerationDeps } from './deps.js';
import { confirmResidency } from './slot-truth.js';
import { beforeTaskStart, bookSaveUnderContention } from './before-launch.js';
import { enterLaunchGate, launchClues, leaveLaunchGateWhenRunning, placeUnpinnedTask } from './launch-tracking.js';
import { leavePlacementToServer, leavesToServerRam } from './server-ram-tier.js';
import { noteLaunch, reachRamByPin } from './pinned-ram-tier.js';
import type { GatePass } from '../slots/launch-gate.js';
import type { GenerationAdapter, GenerationRequest } from './adapter.js';
import type { ReplayCall } from '../slots/ram-rescue.js';
import { noticeLostSlot, noticeServerCacheMiss, recordSlotContent, swapComing } from './after-answer.js';
import { CLIENT_CLOSED_REQUEST, forwardGeneration } from './forward.js';
import { sessionOf } from './session.js';
import { newTaskMark } from './task-mark.js';
import { ANY_SLOT } from '../backend/llama-client.js';
import { restoreWithRoom, roomForRamLoad } from './slot-room.js';

/** One request as the flow sees it: the adapter's description, its analysis, and its session. */
interface Generation {
  adapter: GenerationAdapter;
  request: GenerationRequest;
  analysis: PromptAnalysis;
  session: string | undefined;
}

/** Handle one generation request of `adapter`'s API end to end. */
export async function handleGeneration(
  deps: GenerationDeps,
  adapter: GenerationAdapter,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const http = { headers: request.headers, query: (request.query ?? {}) as Record<string, unknown> };
  const described = adapter.read(request.body, http);
  const analysis = cacheable(described, deps.analyzer.analyze({ model: described.model, parts: described.parts }));
  const gen: Generation = { adapter, request: described, analysis, session: sessionOf(described.session, http) };
  const started = performance.now();
  const abort = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) abort.abort(new Error('client disconnected'));
  };
  reply.raw.on('close', onClose);
  deps.pending.enter(analysis.model);
  try {
    await deps.backends.ensureReady();
    await deps.prepareForModel(analysis.model, analysis.big);
    await serve(deps, gen, reply, abort, started);
  } finally {
    reply.raw.off('close', onClose);
    deps.pending.leave(analysis.model);
  }
}

/**
 * A client's `cache_prompt: false` asks the server neither to reuse nor to keep the prompt's cache: for the proxy
 * the request is then not big, whatever its length (nothing restored before it, nothing saved after it, and its
 * slot is not taken to hold a conversation worth keeping). The flag itself reaches the backend unchanged.
 */
function cacheable(request: GenerationRequest, analysis: PromptAnalysis): PromptAnalysis {
  return request.cachePromptOff && analysis.big ? { ...analysis, big: false } : analysis;
}

async function serve(
  deps: GenerationDeps,
  gen: Generation,
  reply: FastifyReply,
  abort: AbortController,
  started: number,
): Promise<void> {
  const { analysis } = gen;
  const worthIt = (match: DiskMatch, slotLcp: number) => deps.policy.restoreWorthIt(analysis.model, match, slotLcp);
  const plan = await acquireSlot(deps, gen, abort, started, worthIt);
  if (!plan) {
    logChat(deps, {
      api: gen.adapter.api,
      ...unplacedLine(analysis, 'client_gone', CLIENT_CLOSED_REQUEST, performance.now() - started),
    });
    // Nobody to answer: end the exchange here so the connection does not wait for a reply that never comes.
    reply.hijack();
    reply.raw.destroy();
    return;
  }

  const line = new RequestLog(analysis, plan, started);
  line.api = gen.adapter.api;
  line.session = gen.session;
  const backend = deps.backends.at(plan.slot.backend);
  let gate: GatePass | undefined;
  // A small prompt is on its way from now until its first byte; a big one lets those on their way start first
  // (sent with it, they would wait for its first batch): outside the launch gate, or once its slot is ready.
  const smallStarted = analysis.big ? undefined : deps.smallFirst.onItsWay(backend.index, gen.request.stream);
  const smallsFirst = async () => (line.smallFirstMs = await deps.smallFirst.started(backend.index));
  const gated = backend.behaviour.clearsIdleSlots();
  try {
    if (analysis.big && gated) await smallsFirst();
    gate = await enterLaunchGate(deps, plan, analysis, worthIt);
    if (gate) line.gatePassed = performance.now();
    // A task sent without a pin just before may not run on the server yet, and its launch will clear this slot:
    // `GET /slots` shows that only once it runs, so a resident slot is checked after it (as a restore waits for it).
    if (gate && plan.resident) await deps.launchGate.launched(backend.index);
    await confirmResidency(deps, plan, analysis, line, worthIt);
    await leavePlacementToServer(deps, plan, analysis);
    const intoRam = await reachRamByPin(deps, plan, analysis);
    // A big launch waits until every unpinned task before it is found on its slot (see placeUnpinnedTask), and a
    // restore until they run on the server: one still on its way would clear the restored slot with its launch.
    if (gate && analysis.big) await deps.launchGate.placed(backend.index);
    if (gate && plan.restore && !plan.unpinned) await deps.launchGate.launched(backend.index);
    await runPlan(deps, plan, analysis, line);
    if (plan.skippedSave) noteSkipped(deps.rent, plan.skippedSave);
    if (analysis.big && !gated) await smallsFirst();
    // The server loads the conversation from its RAM cache before it clears the idle slots: room first.
    const loading = plan.fromServerCache?.content.nTokens;
    const ramLoad = loading ? await roomForRamLoad(deps, backend.index, analysis.model, loading) : undefined;
    line.clearingSaves.push(...(await beforeTaskStart(deps, plan, analysis.model)));
    noteLaunch(deps, plan, intoRam);
    // Sent without a pin, a big task is marked so that GET /slots names its slot (see task-mark.ts). A small
    // request's slot matters little (nothing of it is saved): it does not wait for a look before its launch; nor
    // does a marked one where the server was seen showing marks.
    const bigUnpinned = plan.unpinned && analysis.big;
    const mark = bigUnpinned && !gen.request.seeded ? newTaskMark() : undefined;
    const clues = bigUnpinned ? await launchClues(deps, plan, analysis.model, mark) : {};
    const call = gen.request.backendCall({
      id_slot: plan.unpinned ? ANY_SLOT : plan.slot.id,
      ...(analysis.big && { cache_prompt: true as const }),
      ...(mark !== undefined && { seed: mark }),
    });
    line.forwardStarted = performance.now();
    // Its prefill: from now until the first byte of the answer (a stream's first event follows the prompt).
    const prefill = deps.activity.begin(backend.index);
    // In flight from now until its end (noteEnded below): a launch elsewhere must not count its slot as idle.
    const tokens = expectedTokens(plan, analysis, backend.tokensPerWord.estimate(analysis.model, analysis.wordCount));
    backend.behaviour.noteLaunched(plan.slot, gen.request.stream, analysis.big, tokens);
    if (analysis.big) deps.bookedSaves.taskRunning(plan.slot, analysis.key, analysis.model);
    const leftToRam = analysis.big && leavesToServerRam(deps, backend.index, { model: analysis.model, tokens });
    // A rescue replays the request after its answer: with the answer's text where the route can continue it and
    // replays with it bring the reply back (ReplayReplies).
    const answer: { text?: string } = {};
    if (leftToRam)
      deps.rescues.taskRunning(plan.slot, (idSlot, mark, withReply) =>
        replayOf(gen.request, withReply ? answer.text : undefined, idSlot, mark),
      );
    let runs!: () => void;
    const running = new Promise<void>((resolve) => (runs = resolve));
    const answered = forwardGeneration(backend.client, reply, {
      call,
      stream: gen.request.stream,
      ...(gen.request.answer && { answer: gen.request.answer }),
      signal: abort.signal,
      ...(leftToRam && gen.request.replayWithReply && { collectReply: gen.request.replayWithReply.answerShape }),
      onFirstByte: () => {
        runs();
        smallStarted?.();
        line.firstByte = performance.now();
        prefill.end();
        backend.behaviour.noteFirstByte(plan.slot);
        if (analysis.big) bookSaveUnderContention(deps, plan.slot);
      },
    }).finally(() => {
      smallStarted?.();
      runs();
      prefill.end();
    });
    const placed = plan.unpinned
      ? placeUnpinnedTask(deps, plan, analysis, { answered, running }, gate, clues).catch(() => false)
      : undefined;
    if (gate && !plan.unpinned)
      void leaveLaunchGateWhenRunning(deps, plan, analysis.model, answered, gate).catch(() => undefined);
    const outcome = await answered;
    line.outcome = outcome;
    answer.text = outcome.reply;
    if (outcome.completed) backend.behaviour.noteContact();
    noticeLostSlot(deps, plan, outcome);
    await noticeServerCacheMiss(deps, plan, outcome, analysis.model, ramLoad);
    // Unpinned, on a slot that could not be told: what the request left behind is nowhere the proxy knows.
    if (placed && !(await placed)) {
      deps.pool.forget(plan.slot);
      line.slotUnknown = true;
    } else recordSlotContent(deps, plan, analysis, outcome, gen.session);
    // A launch meanwhile may have booked this answer's save (see BookedSaves): it ran as the task ended.
    const recorded = outcome.completed && outcome.status < 400 ? plan.slot.content : undefined;
    deps.rescues.taskEnded(plan.slot, recorded, outcome.timings?.predicted_n);
    const booked = await deps.bookedSaves.taskEnded(plan.slot, recorded);
    if (booked) line.save = { ...booked, booked: true };
    if (outcome.status < 400) void backend.checkSlotCount(analysis.model);
    if (analysis.big && outcome.timings?.cache_n !== undefined && outcome.timings.prompt_n !== undefined)
      backend.tokensPerWord.learn(
        analysis.model,
        analysis.wordCount,
        outcome.timings.cache_n + outcome.timings.prompt_n,
      );
    deps.policy.learnFromAnswer(analysis.model, {
      timings: outcome.timings,
      restore: line.restore,
      shared: !prefill.alone(),
    });
    const content = plan.slot.content;
    if (
      content?.big &&
      !content.saved &&
      deps.policy.savesAfterAnswer(() => swapComing(deps, backend.index, analysis.model))
    ) {
      line.save = await deps.slotCache.save(plan.slot, content);
    }
  } catch (err) {
    line.error = err;
    // The backend may have started on this prompt before it failed: what the slot held is no longer known.
    if (line.forwardStarted !== undefined) deps.pool.forget(plan.slot);
    throw err;
  } finally {
    smallStarted?.();
    gate?.release();
    // After a failure: a save booked for this task holds a state nobody knows (deleted).
    await deps.bookedSaves.taskEnded(plan.slot, undefined);
    deps.rescues.taskEnded(plan.slot, undefined);
    backend.behaviour.noteEnded(plan.slot);
    deps.pool.release(plan.slot);
    deps.answerSaver.slotReleased(plan.slot);
    logChat(deps, line.toJSON(backend.url));
  }
}

/** The request again, served from the server's RAM cache without generating anything (RamRescues). */
const replayParams = (idSlot: number, mark: number | undefined) =>
  ({
    id_slot: idSlot,
    cache_prompt: true,
    n_predict: 0,
    stream: false,
    ...(mark !== undefined && { seed: mark }),
  }) as const;

/**
 * The replay of a request whose answer a rescue brings back: with the answer's text as a last assistant message
 * where the route takes one (chat, Responses), so that the state saved holds the reply (checked on the real server:
 * a 2,372-token prompt and its 40-token reply came back as 2,411 tokens from the RAM cache, and the next turn reused
 * 2,412); else the request alone, whose saved state lacks the reply.
 */
function replayOf(
  request: GenerationRequest,
  answerText: string | undefined,
  idSlot: number,
  mark: number | undefined,
): ReplayCall {
  const params = replayParams(idSlot, mark);
  return answerText !== undefined && request.replayWithReply
    ? { ...request.replayWithReply.call(params, answerText), withReply: true }
    : { ...request.backendCall(params), withReply: false };
}

/** The request's one `chat` log line, also kept for the status API and the metrics. */
function logChat(deps: GenerationDeps, line: ChatLogLine): void {
  deps.log.info(line, 'chat');
  deps.observer.noteRequest(line);
}

/**
 * How long a request waits for a slot busy only for a moment (its own conversation's, or one being saved in the
 * background) before it takes an idle one at a cost (cold, or pushing out a conversation).
 */
const BUSY_SLOT_PATIENCE_MS = 5000;

/** The scheduler's plan with its slot taken, or undefined when the client left while waiting. */
async function acquireSlot(
  deps: GenerationDeps,
  gen: Generation,
  abort: AbortController,
  started: number,
  worthIt: (match: DiskMatch, slotLcp: number) => boolean,
): Promise<SlotPlan | undefined> {
  const { analysis } = gen;
  // Wait for a slot busy only for a moment (see PlanInput.patient); past that, go elsewhere.
  let patient = true;
  const patience = setTimeout(() => {
    patient = false;
    deps.pool.retry();
  }, BUSY_SLOT_PATIENCE_MS);
  const request = { ...analysis, ...(gen.session !== undefined && { session: gen.session }) };
  return deps.pool
    .acquire(
      analysis.model,
      (candidates) =>
        pinPlannedFile(
          deps,
          planSlot({
            request,
            candidates,
            diskMatch: (backend) => deps.diskMatch(backend, analysis),
            lcpTh: deps.lcpTh,
            restoreWorthIt: worthIt,
            skipSave: deps.policy.skipSave,
            patient,
            keepsIdleSlots: (backend) => !deps.backends.at(backend).behaviour.clearsIdleSlots(),
            prefilling: (slot) => deps.backends.at(slot.backend).behaviour.mayBePrefilling(slot),
          }),
        ),
      { timeoutMs: deps.acquireTimeoutMs, signal: abort.signal },
    )
    .catch((err: unknown) => {
      if (abort.signal.aborted) return undefined;
      // Still one line per request: a 503 after ACQUIRE_TIMEOUT is exactly what an operator needs to see.
      const status = (err as { status?: number }).status ?? 500;
      logChat(deps, {
        api: gen.adapter.api,
        ...unplacedLine(analysis, 'no_slot', status, performance.now() - started),
      });
      throw err;
    })
    .finally(() => clearTimeout(patience));
}

/**
 * The file a plan restores must outlive the save that runs before the restore (seconds for a long context): cleanup
 * and lineage skip pinned files. Pinned in the tick the plan is made, so no await lies between choosing the file and
 * protecting it; `runPlan` unpins it.
 */
function pinPlannedFile(deps: GenerationDeps, plan: SlotPlan | undefined): SlotPlan | undefined {
  if (plan?.restore) deps.index.pin(plan.restore.key);
  return plan;
}

/**
 * About what a task will hold in its slot once its prompt is in: what it reuses (from the RAM cache, or its slot's
 * conversation) and what its words make (`fromWords`, see TokensPerWord), whichever is more.
 */
function expectedTokens(plan: SlotPlan, analysis: Pick<PromptAnalysis, 'big'>, fromWords: number): number {
  const reused = plan.fromServerCache?.content.nTokens ?? plan.slot.content?.nTokens ?? 0;
  return analysis.big ? Math.max(reused, fromWords) : fromWords;
}

/** Carry out the disk side of the plan; the planned file's pin is released whatever happens. */
async function runPlan(
  deps: GenerationDeps,
  plan: SlotPlan,
  analysis: PromptAnalysis,
  line: RequestLog,
): Promise<void> {
  try {
    // Unless a launch elsewhere saved and cleared it meanwhile (a backend that clears idle slots).
    if (plan.saveFirst && plan.slot.content === plan.saveFirst && !plan.saveFirst.saved) {
      line.evictSave = await deps.slotCache.save(plan.slot, plan.saveFirst);
    }
    if (plan.restore) line.restore = await restoreWithRoom(deps, plan.slot, plan.restore.key, analysis.model);
  } finally {
    // Before the answer: a save after it may retire this entry as the new content's parent (lineage).
    if (plan.restore) deps.index.unpin(plan.restore.key);
  }
}
