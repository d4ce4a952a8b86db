/**
 * Validation of `POST /completion` and `POST /v1/completions` bodies (raw text prompts) as llama-server does it:
 * an unparsable body is a 500 with nlohmann's text, a missing `prompt` a 400 with nlohmann's `at()` text, a prompt
 * that is neither a string nor a list of token ids the server's own 400. The prompt gets BOS in front (the model
 * adds it), `id_slot` and `cache_prompt` are honoured, `n_predict` or `max_tokens` bound the reply.
 */
import { bodySampling, intField, replyLength } from './task-params.js';
import type { ChatTask } from './chat-engine.js';
import { DEFAULT_REPLY_TOKENS } from './chat-request.js';
import { missingKeyMessage, parseJsonBody } from './http-io.js';
import { tokenize, Vocabulary } from './tokenizer.js';

/** A completion request ready to run, or the error to answer. */
export type ParsedCompletion =
  | { ok: true; task: ChatTask; stream: boolean; promptText: string }
  | { ok: false; status: number; message: string; type?: string };

const BAD_PROMPT =
  '"prompt" elements must be a string, a list of tokens, a JSON object containing a prompt string, or a list of mixed strings & tokens.';

/** The prompt's text (token ids are looked up in `vocab`), or undefined when llama-server would refuse it. */
function promptTextOf(prompt: unknown, vocab: Vocabulary): string | undefined {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && prompt.every((t) => typeof t === 'number' && Number.isInteger(t))) {
    return (prompt as number[]).map((id) => vocab.pieceOf(id) ?? '').join('');
  }
  return undefined;
}

/** Parses and validates a completion body; `vocab` resolves prompts given as token ids. */
export function parseCompletionRequest(raw: Buffer, vocab: Vocabulary): ParsedCompletion {
  const parsed = parseJsonBody(raw);
  if (!parsed.ok) return { ok: false, status: 500, message: parsed.message, type: 'server_error' };
  const body = (typeof parsed.value === 'object' && parsed.value !== null ? parsed.value : {}) as Record<
    string,
    unknown
  >;
  if (!('prompt' in body)) return { ok: false, status: 400, message: missingKeyMessage('prompt') };
  const text = promptTextOf(body.prompt, vocab);
  if (text === undefined) return { ok: false, status: 400, message: BAD_PROMPT };

  const reply = replyLength(body, ['n_predict', 'max_tokens'], DEFAULT_REPLY_TOKENS);
  const idSlot = intField(body, 'id_slot');
  const stream = body.stream === true;
  const task: ChatTask = {
    prompt: [Vocabulary.BOS.piece, ...tokenize(text)],
    promptText: text,
    cachePrompt: body.cache_prompt !== false,
    ...reply,
    idSlot: idSlot === undefined || idSlot === -1 ? undefined : idSlot,
    params: bodySampling(body, reply, stream, { reasoning_format: 'deepseek' }),
  };
  return { ok: true, task, stream, promptText: text };
}
