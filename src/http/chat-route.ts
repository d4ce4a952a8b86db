/**
 * POST /v1/chat/completions: analyse the prompt, get a slot from the scheduler, carry out its plan (save the
 * evicted content, restore from disk), forward with `id_slot`, then record what the slot holds and save per policy.
 * One structured log line per request says what was decided and how long each step took.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import { planSlot } from '../slots/slot-planner.js';
import { continuesBlocks } from '../prompt/block-match.js';
import type { DiskMatch, SlotPlan } from '../slots/slot-state.js';
import type { ProxyContext } from './context.js';
import { CLIENT_CLOSED_REQUEST, forwardChat } from './chat-forward.js';
import type { ForwardOutcome } from './chat-forward.js';
import { validateChatBody } from './chat-request.js';
import { upstreamBody } from './json-body.js';
import { RequestLog, unplacedLine } from './request-log.js';
import type { ChatLogLine } from './request-log.js';
import { beforeTaskStart, confirmResidency } from './slot-truth.js';

/** Handle one chat completion request end to end. */
export async function handleChat(ctx: ProxyContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const body = validateChatBody(request.body);
  const { config } = ctx;
  const analysis = cacheable(body, ctx.analyzer.analyze(body));
  const started = performance.now();
  const abort = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) abort.abort(new Error('client disconnected'));
  };
  reply.raw.on('close', onClose);
  const smart = config.savePolicy === 'smart';
  ctx.pendingByModel.set(analysis.model, (ctx.pendingByModel.get(analysis.model) ?? 0) + 1);
  try {
    await ctx.ensureBackendKinds();
    await ctx.prepareForModel(analysis.model, analysis.big);
    await serve(ctx, analysis, body, reply, abort, started, smart);
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
function cacheable(body: Record<string, unknown>, analysis: PromptAnalysis): PromptAnalysis {
  return body.cache_prompt === false && analysis.big ? { ...analysis, big: false } : analysis;
}

async function serve(
  ctx: ProxyContext,
  analysis: PromptAnalysis,
  body: Record<string, unknown>,
  reply: FastifyReply,
  abort: AbortController,
  started: number,
  smart: boolean,
): Promise<void> {
  const { config } = ctx;
  const worthIt = smart ? (match: DiskMatch, slotLcp: number) => restoreWorthIt(ctx, analysis.model, match, slotLcp) : undefined;
  // Wait for the slot that holds this conversation while it is busy only for a moment; past that, go elsewhere.
  let waitForOwnSlot = true;
  const patience = setTimeout(() => {
    waitForOwnSlot = false;
    ctx.pool.retry();
  }, OWN_SLOT_PATIENCE_MS);
  const plan = await ctx.pool
    .acquire(analysis.model, (candidates) => pinPlannedFile(ctx, planSlot({
      request: analysis,
      candidates,
      diskMatch: (backend) => ctx.diskMatch(backend, analysis),
      lcpTh: config.lcpTh,
      ...(worthIt && { restoreWorthIt: worthIt }),
      skipSave: ctx.skipSave,
      waitForOwnSlot,
    })), { timeoutMs: config.acquireTimeout * 1000, signal: abort.signal })
    .catch((err: unknown) => {
      if (abort.signal.aborted) return undefined;
      // Still one line per request: a 503 after ACQUIRE_TIMEOUT is exactly what an operator needs to see.
      const status = (err as { status?: number }).status ?? 500;
      logChat(ctx, unplacedLine(analysis, 'no_slot', status, performance.now() - started));
      throw err;
    })
    .finally(() => clearTimeout(patience));
  if (!plan) {
    logChat(ctx, unplacedLine(analysis, 'client_gone', CLIENT_CLOSED_REQUEST, performance.now() - started));
    // Nobody to answer: end the exchange here so the connection does not wait for a reply that never comes.
    reply.hijack();
    reply.raw.destroy();
    return;
  }

  const line = new RequestLog(analysis, plan, started);
  const backend = plan.slot.backend;
  try {
    await confirmResidency(ctx, plan, analysis, line, worthIt);
    await runPlan(ctx, plan, analysis, line);
    await beforeTaskStart(ctx, plan, line);
    const upstream = upstreamBody(body, { id_slot: plan.slot.id, cache_prompt: analysis.big ? true : undefined });
    line.forwardStarted = performance.now();
    // Its prefill: from now until the first byte of the answer (a stream's first event follows the prompt).
    const prefill = ctx.activity.begin(backend);
    const outcome = await forwardChat(ctx.clients[backend]!, upstream, body.stream === true, reply, abort.signal, () => prefill.end())
      .finally(() => prefill.end());
    line.outcome = outcome;
    if (outcome.completed) ctx.behaviour.noteContact(backend);
    noticeLostSlot(ctx, plan, outcome);
    recordSlotContent(ctx, plan, analysis, outcome);
    if (outcome.status < 400) void ctx.checkSlotCount(backend, analysis.model);
    if (smart) learnFromAnswer(ctx, analysis.model, line, outcome, !prefill.alone());
    const content = plan.slot.content;
    if (content?.big && !content.saved && (!smart || swapComing(ctx, backend, analysis.model))) {
      line.save = await ctx.slotCache.save(plan.slot, content);
    }
  } catch (err) {
    line.error = err;
    // The backend may have started on this prompt before it failed: what the slot held is no longer known.
    if (line.forwardStarted !== undefined) plan.slot.content = undefined;
    throw err;
  } finally {
    ctx.pool.release(plan.slot);
    ctx.writeBehind?.slotReleased(plan.slot);
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
    if (plan.saveFirst) line.evictSave = await ctx.slotCache.save(plan.slot, plan.saveFirst);
    if (plan.restore) line.restore = await ctx.slotCache.restore(plan.slot, plan.restore.key, analysis.model);
  } finally {
    // Before the answer: a save after it may retire this entry as the new content's parent (lineage).
    if (plan.restore) ctx.index.unpin(plan.restore.key);
  }
}

/**
 * After the backend answered, the slot holds this prompt and its reply; after an abort we no longer know. When
 * the prompt extends what the slot held before (the same conversation), the entry on disk behind that earlier
 * state becomes this content's parent: the save that supersedes it replaces it (lineage).
 */
function recordSlotContent(ctx: ProxyContext, plan: SlotPlan, analysis: PromptAnalysis, outcome: ForwardOutcome): void {
  if (outcome.clientGone || !outcome.completed) {
    plan.slot.content = undefined;
    return;
  }
  if (outcome.status >= 400) return;
  const previous = plan.slot.content;
  const continues = previous?.big === true && previous.model === analysis.model &&
    continuesBlocks(previous.blocks, analysis.blocks);
  const t = outcome.timings;
  const nTokens = t?.cache_n !== undefined && t.prompt_n !== undefined ? t.cache_n + t.prompt_n + Math.max(0, (t.predicted_n ?? 1) - 1) : undefined;
  const parentKey = continues ? (previous.saved ? previous.key : previous.parentKey) : undefined;
  const parentTokens = continues ? (previous.saved ? previous.nTokens : previous.parentTokens) : undefined;
  const fingerprint = ctx.knownFingerprint(plan.slot.backend, analysis.model);
  plan.slot.content = {
    key: analysis.key,
    model: analysis.model,
    blocks: analysis.blocks,
    prefixLen: analysis.prefixLen,
    big: analysis.big,
    saved: false,
    ...(nTokens !== undefined && { nTokens }),
    ...(parentKey !== undefined && { parentKey }),
    ...(parentTokens !== undefined && { parentTokens }),
    ...(fingerprint !== undefined && { fingerprint }),
  };
}

/**
 * The slot was believed to hold this conversation, yet the backend reused (almost) nothing: it restarted, or cleared
 * the slot itself. Whatever the other slots of that backend were believed to hold is then doubtful too, and so is
 * the model identity: forget both, so the next requests restore from disk instead of trusting empty slots.
 */
function noticeLostSlot(ctx: ProxyContext, plan: SlotPlan, outcome: ForwardOutcome): void {
  const t = outcome.timings;
  if (!plan.resident || !outcome.completed || t?.cache_n === undefined || t.prompt_n === undefined) return;
  if (t.prompt_n < LOST_SLOT_MIN_PROMPT || t.cache_n >= LOST_SLOT_MAX_REUSE) return;
  const backend = plan.slot.backend;
  ctx.log.warn({ backend: ctx.clients[backend]!.url, slot: plan.slot.id, cache_n: t.cache_n, prompt_n: t.prompt_n },
    'a slot had lost the conversation it was believed to hold (backend restarted?); forgetting what its slots held');
  for (const slot of ctx.pool.all()) if (slot.backend === backend && slot !== plan.slot && !slot.busy) slot.content = undefined;
  ctx.forgetBackend(backend);
}

/** Reuse below this many tokens on a resident slot means it was empty (a template prefix can match by chance). */
const LOST_SLOT_MAX_REUSE = 16;
/** Only a prompt this long makes the missing reuse meaningful. */
const LOST_SLOT_MIN_PROMPT = 64;

/** Restore only for a longer prefix than the slot has, and only when it is cheaper than prefilling the gain. */
function restoreWorthIt(ctx: ProxyContext, model: string, match: DiskMatch, slotLcp: number): boolean {
  if (match.lcp <= slotLcp) return false;
  const tokensPerBlock = match.tokens ? match.tokens / Math.max(1, match.blockCount) : ctx.config.wordsPerBlock * 1.3;
  const restoreTokens = match.tokens ?? match.blockCount * tokensPerBlock;
  return ctx.economics.restoreWorthIt(model, restoreTokens, (match.lcp - slotLcp) * tokensPerBlock);
}

/** The measured prefill speed, and whether the restore brought the reuse it promised. */
function learnFromAnswer(ctx: ProxyContext, model: string, line: RequestLog, outcome: ForwardOutcome, shared: boolean): void {
  const t = outcome.timings;
  ctx.economics.notePrefill(model, t?.prompt_n, t?.prompt_ms, shared);
  const restore = line.restore;
  if (!restore?.ok || restore.tokens === undefined) return;
  if (ctx.economics.noteRestoreOutcome(model, restore.tokens, t?.cache_n) === 'disabled') {
    ctx.log.warn({ model, restored_tokens: restore.tokens, cache_n: t?.cache_n },
      'restores of this model bring no reuse (sliding-window or hybrid model?); not restoring it any more');
  }
}

/** Behind llama-swap or router mode, a request for another model is waiting: this model is about to be unloaded. */
function swapComing(ctx: ProxyContext, backend: number, model: string): boolean {
  const kind = ctx.clients[backend]!.kind;
  if (kind !== 'llama-swap' && kind !== 'router') return false;
  for (const [other, count] of ctx.pendingByModel) if (other !== model && count > 0) return true;
  return false;
}
