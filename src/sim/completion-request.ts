/**
 * Validation of `POST /completion` and `POST /v1/completions` bodies (raw text prompts) as llama-server does it:
 * an unparsable body is a 500 with nlohmann's text, a missing `prompt` a 400 with nlohmann's `at()` text, a prompt
 * it cannot read (promptTextOf) or a sampling field of the wrong type (fieldTypeError) the server's own 400. The
 * prompt gets BOS in front (the model adds it), `id_slot` and `cache_prompt` are honoured, `n_predict` or
 * `max_tokens` bound the reply.
 */
import { bodySampling, fieldTypeError, intField, replyLength } from './task-params.js';
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

const EMPTY_PROMPT = '"prompt" must not be empty';
const INVALID_TOKENS = 'Prompt contains invalid tokens';

/**
 * The prompt's text (token ids are looked up in `vocab`), or the 400 llama-server answers: a string, a list of
 * tokens and strings mixed, or a list holding one of those. Several prompts (`["a", "b"]`, `[[1], [2]]`), which the
 * real server runs as several tasks, are not simulated (refused as a prompt it cannot read).
 */
function promptTextOf(prompt: unknown, vocab: Vocabulary): { text: string } | { error: string } {
  if (typeof prompt === 'string') return { text: prompt };
  if (!Array.isArray(prompt)) return { error: BAD_PROMPT };
  if (prompt.length === 0) return { error: EMPTY_PROMPT };
  if (prompt.length === 1 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0])))
    return promptTextOf(prompt[0], vocab);
  const isToken = (t: unknown): t is number => typeof t === 'number' && Number.isInteger(t);
  if (!prompt.every((t) => isToken(t) || typeof t === 'string') || !prompt.some(isToken)) return { error: BAD_PROMPT };
  if (prompt.some((t) => isToken(t) && !vocab.knows(t))) return { error: INVALID_TOKENS };
  return { text: prompt.map((t) => (isToken(t) ? (vocab.pieceOf(t) ?? '') : t)).join('') };
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
  const prompt = promptTextOf(body.prompt, vocab);
  if ('error' in prompt) return { ok: false, status: 400, message: prompt.error };
  const wrongType = fieldTypeError(body);
  if (wrongType) return { ok: false, status: 400, message: wrongType };
  const text = prompt.text;

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
