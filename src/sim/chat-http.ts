/**
 * `POST /v1/chat/completions`: runs the task and answers exactly like chat_nonstream.txt, chat_stream.txt and
 * chat_stream_usage.txt. A stream's headers go out with the first token (after the prefill, as on the real
 * server), `timings` ride on the finish chunk or on the usage chunk, and `data: [DONE]` ends it.
 */
import type { ChatOutcome } from './chat-engine.js';
import { parseChatRequest } from './chat-request.js';
import { endSse, sendError, sendJson, startSse, writeSse, type Exchange } from './http-io.js';
import { BUILD_INFO } from './llama-shapes.js';
import type { ModelInstance } from './model-instance.js';
import { completionId, runTaskFor, timingsOf, usageOf } from './task-http.js';

/** Handles one chat request on `inst`. */
export async function handleChat(inst: ModelInstance, ex: Exchange): Promise<void> {
  const parsed = parseChatRequest(ex.req.body);
  if (!parsed.ok) return sendError(ex, parsed.status, parsed.message);
  const { task, stream, includeUsage } = parsed;
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

  const outcome: ChatOutcome | undefined = await runTaskFor(inst, ex, task, onToken);
  if (!outcome) return;
  if (!stream) {
    return sendJson(ex, 200, {
      choices: [
        {
          finish_reason: outcome.finishReason,
          index: 0,
          message: { role: 'assistant', content: outcome.predicted.join('') },
        },
      ],
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
