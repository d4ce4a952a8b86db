/**
 * What every generation endpoint (chat, Anthropic messages, completions) does around its task: the context-size
 * check, injected `chat` faults, tracking the request so a client that leaves aborts the task, and dropping the
 * connection of an aborted answer. Also the pieces their answers share (`timings`, OpenAI `usage`, completion ids).
 */
import { randomBytes } from 'node:crypto';
import { runChat, type ChatOutcome, type ChatTask, type TokenSink } from './chat-engine.js';
import { sendError, sendJson, type Exchange } from './http-io.js';
import type { ModelInstance } from './model-instance.js';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `chatcmpl-` and 32 letters or digits: the id of every completion answer, the Anthropic ones included. */
export function completionId(): string {
  const bytes = randomBytes(32);
  let id = 'chatcmpl-';
  for (const b of bytes) id += ALNUM[b % ALNUM.length];
  return id;
}

/** The `timings` object, fields in the server's order (rates are null when a duration is 0, like inf in C++). */
export function timingsOf(o: ChatOutcome): Record<string, number | null> {
  const n = o.predicted.length;
  return {
    cache_n: o.cacheN,
    prompt_n: o.promptN,
    prompt_ms: o.promptMs,
    prompt_per_token_ms: o.promptN > 0 ? o.promptMs / o.promptN : 0,
    prompt_per_second: o.promptMs > 0 ? (1000 * o.promptN) / o.promptMs : null,
    predicted_n: n,
    predicted_ms: o.predictedMs,
    predicted_per_token_ms: n > 0 ? o.predictedMs / n : 0,
    predicted_per_second: o.predictedMs > 0 ? (1000 * n) / o.predictedMs : null,
  };
}

/** OpenAI `usage` of an outcome. */
export function usageOf(o: ChatOutcome): Record<string, unknown> {
  const prompt = o.cacheN + o.promptN;
  return {
    completion_tokens: o.predicted.length,
    prompt_tokens: prompt,
    total_tokens: prompt + o.predicted.length,
    prompt_tokens_details: { cached_tokens: o.cacheN },
  };
}

/**
 * Runs `task` for the request `ex`; resolves with the outcome, or undefined once the answer is settled otherwise
 * (a 400 for a prompt over the context, an injected fault, or the client gone and the connection dropped).
 */
export async function runTaskFor(
  inst: ModelInstance,
  ex: Exchange,
  task: ChatTask,
  onToken: TokenSink,
): Promise<ChatOutcome | undefined> {
  const nCtx = inst.config.nCtx;
  if (task.prompt.length > nCtx) {
    sendJson(ex, 400, {
      error: {
        code: 400,
        message: `request (${task.prompt.length} tokens) exceeds the available context size (${nCtx} tokens), try increasing it`,
        type: 'exceed_context_size_error',
        n_prompt_tokens: task.prompt.length,
        n_ctx: nCtx,
      },
    });
    return undefined;
  }
  const fault = inst.recorder.takeFault('chat', inst.config.id);
  if (fault) {
    sendError(ex, fault.status, fault.message ?? 'injected chat fault');
    return undefined;
  }
  const tracked = inst.track(ex);
  let outcome: ChatOutcome;
  try {
    outcome = await runChat(inst, task, onToken, tracked.signal);
  } finally {
    tracked.done();
  }
  if (outcome.aborted) {
    if (!ex.res.writableEnded) ex.res.destroy();
    return undefined;
  }
  return outcome;
}
