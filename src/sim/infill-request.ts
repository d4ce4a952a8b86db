/**
 * Validation of `POST /infill` bodies as llama-server does it (captured from the binary with the tiny model, which
 * has FIM prefix/suffix/middle tokens but no file-separator token): a missing `input_prefix` or `input_suffix` is a
 * 500 with nlohmann's `at()` text, a non-string one nlohmann's type error, a bad `input_extra` the server's own 400.
 * The prompt is rendered as the server renders it for such a model: each extra chunk as
 * `\n\n--- snippet ---\n\n{text}`, then BOS, `<|fim_prefix|>{prefix}{prompt}<|fim_suffix|>{suffix}<|fim_middle|>`.
 * Everything else (`id_slot`, `cache_prompt`, `n_predict`, stream) is read as for `/completion`.
 */
import type { ParsedCompletion } from './completion-request.js';
import { parseCompletionRequest } from './completion-request.js';
import { isObject, missingKeyMessage, parseJsonBody, wrongTypeMessage } from './http-io.js';
import { tokenize, Vocabulary } from './tokenizer.js';

const BAD_EXTRA = '"input_extra" must be an array of {"filename": string, "text": string}';
const BAD_CHUNK_TEXT = 'extra_context chunk must contain a "text" field with a string value';
const BAD_CHUNK_FILENAME = 'extra_context chunk\'s "filename" field must be a string';

/** Parses and validates an infill body; `vocab` as for completions. */
export function parseInfillRequest(raw: Buffer, vocab: Vocabulary): ParsedCompletion {
  const parsed = parseJsonBody(raw);
  if (!parsed.ok) return { ok: false, status: 500, message: parsed.message, type: 'server_error' };
  const body = isObject(parsed.value) ? parsed.value : {};
  for (const key of ['input_prefix', 'input_suffix']) {
    if (!(key in body)) return { ok: false, status: 500, message: missingKeyMessage(key), type: 'server_error' };
    if (typeof body[key] !== 'string')
      return { ok: false, status: 500, message: wrongTypeMessage(body[key]), type: 'server_error' };
  }
  const extra = body.input_extra ?? [];
  if (!Array.isArray(extra)) return { ok: false, status: 400, message: BAD_EXTRA };
  if (!extra.every((c) => isObject(c) && typeof c.text === 'string'))
    return { ok: false, status: 400, message: BAD_CHUNK_TEXT };
  if (!extra.every((c) => c.filename === undefined || typeof c.filename === 'string'))
    return { ok: false, status: 400, message: BAD_CHUNK_FILENAME };
  const snippets = extra.map((c) => `\n\n--- snippet ---\n\n${String(c.text)}`).join('');
  const prompt = typeof body.prompt === 'string' ? body.prompt : '';
  const fim = `<|fim_prefix|>${String(body.input_prefix)}${prompt}<|fim_suffix|>${String(body.input_suffix)}<|fim_middle|>`;
  // The completion rules for everything but the prompt, on a body whose prompt is the FIM text.
  const asCompletion = parseCompletionRequest(Buffer.from(JSON.stringify({ ...body, prompt: fim })), vocab);
  if (!asCompletion.ok) return asCompletion;
  const tokens = [...tokenize(snippets), Vocabulary.BOS.piece, ...tokenize(fim)];
  const promptText = `${snippets}${Vocabulary.BOS.piece}${fim}`;
  return { ...asCompletion, task: { ...asCompletion.task, prompt: tokens, promptText }, promptText };
}
