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
import type { ProxyContext } from '../http/context.js';
import { RequestLog, unplacedLine } from '../http/request-log.js';
import type { ChatLogLine } from '../http/request-log.js';
import { beforeTaskStart, confirmResidency, enterLaunchGate, leaveLaunchGateWhenRunning } from '../http/slot-truth.js';
import type { GatePass } from '../slots/launch-gate.js';
import type { GenerationAdapter, GenerationRequest } from './adapter.js';
import { noticeLostSlot, recordSlotContent, swapComing } from './after-answer.js';
import { CLIENT_CLOSED_REQUEST, forwardGeneration } from './forward.js';
import { sessionOf } from './session.js';

/** One request as the flow sees it: the adapter's description, its analysis, and its session. */
interface Generation {
  adapter: GenerationAdapter;
  request: GenerationRequest;
  analysis: PromptAnalysis;
  session: string | undefined;
}

/** Handle one generation request of `adapter`'s API end to end. */
export async function handleGeneration(
  ctx: ProxyContext,
  adapter: GenerationAdapter,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const http = { headers: request.headers, query: (request.query ?? {}) as Record<string, unknown> };
  const described = adapter.read(request.body, http);
  const analysis = cacheable(described, ctx.analyzer.analyze({ model: described.model, parts: described.parts }));
  const gen: Generation = { adapter, request: described, analysis, session: sessionOf(described.session, http) };
  const started = performance.now();
  const abort = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) abort.abort(new Error('client disconnected'));
  };
  reply.raw.on('close', onClose);
  ctx.pendingByModel.set(analysis.model, (ctx.pendingByModel.get(analysis.model) ?? 0) + 1);
  try {
    await ctx.ensureBackendKinds();
    await ctx.prepareForModel(analysis.model, analysis.big);
    await serve(ctx, gen, reply, abort, started);
  } finally {
    reply.raw.off('close', onClose);
    const left = (ctx.pendingByModel.get(analysis.model) ?? 1) - 1;
    if (left > 0) ctx.pendingByModel.set(analysis.model, left);
    else ctx.pendingByModel.delete(analysis.model);
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

async function serve(ctx: ProxyContext, gen: Generation, reply: FastifyReply, abort: AbortController, started: number): Promise<void> {
  const { analysis } = gen;
  const worthIt = (match: DiskMatch, slotLcp: number) => ctx.policy.restoreWorthIt(analysis.model, match, slotLcp);
  const plan = await acquireSlot(ctx, gen, abort, started, worthIt);
  if (!plan) {
    logChat(ctx, { api: gen.adapter.api, ...unplacedLine(analysis, 'client_gone', CLIENT_CLOSED_REQUEST, performance.now() - started) });
    // Nobody to answer: end the exchange here so the connection does not wait for a reply that never comes.
    reply.hijack();
    reply.raw.destroy();
    return;
  }

  const line = new RequestLog(analysis, plan, started);
  line.api = gen.adapter.api;
  line.session = gen.session;
  const backend = plan.slot.backend;
  let gate: GatePass | undefined;
  try {
    gate = await enterLaunchGate(ctx, plan, analysis, worthIt);
    await confirmResidency(ctx, plan, analysis, line, worthIt);
    await runPlan(ctx, plan, analysis, line);
    if (plan.skippedSave) noteSkipped(ctx.resaveRent, plan.skippedSave);
    await beforeTaskStart(ctx, plan, line, analysis.model);
    const call = gen.request.backendCall({ id_slot: plan.slot.id, ...(analysis.big && { cache_prompt: true as const }) });
    line.forwardStarted = performance.now();
    // Its prefill: from now until the first byte of the answer (a stream's first event follows the prompt).
    const prefill = ctx.activity.begin(backend);
    // In flight from now until its end (noteEnded below): a launch elsewhere must not count its slot as idle.
    ctx.behaviour.noteLaunched(plan.slot);
    const answered = forwardGeneration(ctx.clients[backend]!, reply, {
      call,
      stream: gen.request.stream,
      ...(gen.request.answer && { answer: gen.request.answer }),
      signal: abort.signal,
      onFirstByte: () => prefill.end(),
    }).finally(() => prefill.end());
    if (gate) void leaveLaunchGateWhenRunning(ctx, plan, analysis.model, answered, gate);
    const outcome = await answered;
    line.outcome = outcome;
    if (outcome.completed) ctx.behaviour.noteContact(backend);
    noticeLostSlot(ctx, plan, outcome);
    recordSlotContent(ctx, plan, analysis, outcome, gen.session);
    if (outcome.status < 400) void ctx.checkSlotCount(backend, analysis.model);
    ctx.policy.learnFromAnswer(analysis.model, { timings: outcome.timings, restore: line.restore, shared: !prefill.alone() });
    const content = plan.slot.content;
    if (content?.big && !content.saved && ctx.policy.savesAfterAnswer(() => swapComing(ctx, backend, analysis.model))) {
      line.save = await ctx.slotCache.save(plan.slot, content);
    }
  } catch (err) {
    line.error = err;
    // The backend may have started on this prompt before it failed: what the slot held is no longer known.
    if (line.forwardStarted !== undefined) ctx.pool.forget(plan.slot);
    throw err;
  } finally {
    gate?.release();
    ctx.behaviour.noteEnded(plan.slot);
    ctx.pool.release(plan.slot);
    ctx.answerSaver.slotReleased(plan.slot);
    logChat(ctx, line.toJSON(ctx.clients[backend]!.url));
  }
}

/** The request's one `chat` log line, also kept for the status API and the metrics. */
function logChat(ctx: ProxyContext, line: ChatLogLine): void {
  ctx.log.info(line, 'chat');
  ctx.observer.noteRequest(line);
}

/** How long a request waits for its own conversation's busy slot before it takes another one (cold or restored). */
const OWN_SLOT_PATIENCE_MS = 5000;

/** The scheduler's plan with its slot taken, or undefined when the client left while waiting. */
async function acquireSlot(
  ctx: ProxyContext,
  gen: Generation,
  abort: AbortController,
  started: number,
  worthIt: (match: DiskMatch, slotLcp: number) => boolean,
): Promise<SlotPlan | undefined> {
  const { analysis } = gen;
  // Wait for the slot that holds this conversation while it is busy only for a moment; past that, go elsewhere.
  let waitForOwnSlot = true;
  const patience = setTimeout(() => {
    waitForOwnSlot = false;
    ctx.pool.retry();
  }, OWN_SLOT_PATIENCE_MS);
  const request = { ...analysis, ...(gen.session !== undefined && { session: gen.session }) };
  return ctx.pool
    .acquire(analysis.model, (candidates) => pinPlannedFile(ctx, planSlot({
      request,
      candidates,
      diskMatch: (backend) => ctx.diskMatch(backend, analysis),
      lcpTh: ctx.config.lcpTh,
      restoreWorthIt: worthIt,
      skipSave: ctx.policy.skipSave,
      waitForOwnSlot,
    })), { timeoutMs: ctx.config.acquireTimeout * 1000, signal: abort.signal })
    .catch((err: unknown) => {
      if (abort.signal.aborted) return undefined;
      // Still one line per request: a 503 after ACQUIRE_TIMEOUT is exactly what an operator needs to see.
      const status = (err as { status?: number }).status ?? 500;
      logChat(ctx, { api: gen.adapter.api, ...unplacedLine(analysis, 'no_slot', status, performance.now() - started) });
      throw err;
    })
    .finally(() => clearTimeout(patience));
}

/**
 * The file a plan restores must outlive the save that runs before the restore (seconds for a long context): cleanup
 * and lineage skip pinned files. Pinned in the tick the plan is made, so no await lies between choosing the file and
 * protecting it; `runPlan` unpins it.
 */
function pinPlannedFile(ctx: ProxyContext, plan: SlotPlan | undefined): SlotPlan | undefined {
  if (plan?.restore) ctx.index.pin(plan.restore.key);
  return plan;
}

/** Carry out the disk side of the plan; the planned file's pin is released whatever happens. */
async function runPlan(ctx: ProxyContext, plan: SlotPlan, analysis: PromptAnalysis, line: RequestLog): Promise<void> {
  try {
    // Unless a launch elsewhere saved and cleared it meanwhile (a backend that clears idle slots).
    if (plan.saveFirst && plan.slot.content === plan.saveFirst && !plan.saveFirst.saved) {
      line.evictSave = await ctx.slotCache.save(plan.slot, plan.saveFirst);
    }
    if (plan.restore) line.restore = await ctx.slotCache.restore(plan.slot, plan.restore.key, analysis.model);
  } finally {
    // Before the answer: a save after it may retire this entry as the new content's parent (lineage).
    if (plan.restore) ctx.index.unpin(plan.restore.key);
  }
}
