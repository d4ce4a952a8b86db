/**
 * `POST /v1/chat/completions`: runs the task and answers exactly like chat_nonstream.txt, chat_stream.txt and
 * chat_stream_usage.txt. A stream's headers go out with the first token (after the prefill, as on the real
 * server), `timings` ride on the finish chunk or on the usage chunk, and `data: [DONE]` ends it.
 */
import { randomBytes } from 'node:crypto';
import { runChat, type ChatOutcome } from './chat-engine.js';
import { parseChatRequest } from './chat-request.js';
import { endSse, sendError, sendJson, startSse, writeSse, type Exchange } from './http-io.js';
import { BUILD_INFO } from './llama-shapes.js';
import type { ModelInstance } from './model-instance.js';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function completionId(): string {
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

function usageOf(o: ChatOutcome): Record<string, unknown> {
  const prompt = o.cacheN + o.promptN;
  return {
    completion_tokens: o.predicted.length,
    prompt_tokens: prompt,
    total_tokens: prompt + o.predicted.length,
    prompt_tokens_details: { cached_tokens: o.cacheN },
  };
}

/** Handles one chat request on `inst`. */
export async function handleChat(inst: ModelInstance, ex: Exchange): Promise<void> {
  const parsed = parseChatRequest(ex.req.body);
  if (!parsed.ok) return sendError(ex, parsed.status, parsed.message);
  const { task, stream, includeUsage } = parsed;
  const nCtx = inst.config.nCtx;
  if (task.prompt.length > nCtx) {
    return sendJson(ex, 400, {
      error: {
        code: 400,
        message: `request (${task.prompt.length} tokens) exceeds the available context size (${nCtx} tokens), try increasing it`,
        type: 'exceed_context_size_error',
        n_prompt_tokens: task.prompt.length,
        n_ctx: nCtx,
      },
    });
  }
  const fault = inst.recorder.takeFault('chat', inst.config.id);
  if (fault) return sendError(ex, fault.status, fault.message ?? 'injected chat fault');

  const head = { created: Math.floor(Date.now() / 1000), id: completionId(), model: parsed.model ?? inst.name };
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    choices,
    created: head.created,
    id: head.id,
    model: head.model,
    system_fingerprint: BUILD_INFO,
    object: 'chat.completion.chunk',
    ...extra,
  });
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    startSse(ex);
    writeSse(ex, chunk([{ finish_reason: null, index: 0, delta: { role: 'assistant', content: null } }]));
  };
  const onToken = stream
    ? (piece: string): void => {
        start();
        writeSse(ex, chunk([{ finish_reason: null, index: 0, delta: { content: piece } }]));
      }
    : () => undefined;

  const tracked = inst.track(ex);
  let outcome: ChatOutcome;
  try {
    outcome = await runChat(inst, task, onToken, tracked.signal);
  } finally {
    tracked.done();
  }
  if (outcome.aborted) {
    if (!ex.res.writableEnded) ex.res.destroy();
    return;
  }
  if (!stream) {
    return sendJson(ex, 200, {
      choices: [{ finish_reason: outcome.finishReason, index: 0, message: { role: 'assistant', content: outcome.predicted.join('') } }],
      created: head.created,
      model: head.model,
      system_fingerprint: BUILD_INFO,
      object: 'chat.completion',
      usage: usageOf(outcome),
      id: head.id,
      timings: timingsOf(outcome),
    });
  }
  start();
  const finish = [{ finish_reason: outcome.finishReason, index: 0, delta: {} }];
  if (includeUsage) {
    writeSse(ex, chunk(finish));
    writeSse(ex, chunk([], { usage: usageOf(outcome), timings: timingsOf(outcome) }));
  } else {
    writeSse(ex, chunk(finish, { timings: timingsOf(outcome) }));
  }
  writeSse(ex, '[DONE]');
  endSse(ex);
}
