/**
 * `POST /v1/completions`, `/completion` and `/completions`: one raw prompt, sent to the same path pinned. The
 * prompt is one canonical part: the string itself, or for token ids (or llama-server's mixed lists of strings and
 * ids) the items joined by single spaces, so a prompt that grows keeps its leading blocks.
 *
 * Several prompts in one request (`["a", "b"]`, `[[1, 2], [3]]`) would run as several tasks on one pinned slot,
 * leaving it with only the last one: they are refused with a 400 (`param: "prompt"`); send one request per prompt.
 */
import { badRequest } from '../../errors.js';
import { upstreamBody } from '../../http/json-body.js';
import type { GenerationAdapter, GenerationRequest } from '../adapter.js';
import { commonFields, llamaFields, objectBody, partsOf } from '../body-fields.js';

/** The adapter for one of the completion paths (the backend call goes to the same path). */
export function completionAdapter(path: string): GenerationAdapter {
  return {
    api: 'completion',
    read(raw) {
      const body = objectBody(raw);
      const { model, stream } = commonFields(body);
      if (body.prompt === undefined) throw badRequest("'prompt' is required", 'prompt');
      return {
        model,
        parts: partsOf([promptText(body.prompt)]),
        stream,
        ...llamaFields(body),
        backendCall: (pin) => ({ path, body: upstreamBody(body, { ...pin }) }),
        ...replayWithReply(path, body),
      };
    },
  };
}

/**
 * A rescue's replay of a text prompt with the answer's text appended (see ReplayWithReply): the slot then holds the
 * reply too, as a client continuing the text (prompt, reply, its next words) will send it. None for token ids (the
 * reply's text has no ids), nor with `echo` (the answer then repeats the prompt).
 */
function replayWithReply(path: string, body: Record<string, unknown>): Pick<GenerationRequest, 'replayWithReply'> {
  const prompt = Array.isArray(body.prompt) && body.prompt.length === 1 ? body.prompt[0] : body.prompt;
  if (typeof prompt !== 'string' || body.echo === true) return {};
  return {
    replayWithReply: {
      answerShape: 'completion',
      call: (pin, reply) => ({ path, body: JSON.stringify({ ...body, ...pin, prompt: prompt + reply }) }),
    },
  };
}

/** The text of one prompt, or a 400: a string, token ids, a mixed list, `{prompt_string}`, or a list of one of those. */
function promptText(prompt: unknown): string {
  const single = singlePrompt(prompt);
  if (single !== undefined) return single;
  if (Array.isArray(prompt) && prompt.length === 1) {
    const only = singlePrompt(prompt[0]);
    if (only !== undefined) return only;
  }
  if (Array.isArray(prompt) && prompt.length > 1 && prompt.every((p) => singlePrompt(p) !== undefined)) {
    throw badRequest(
      "'prompt' holds several prompts; proxycache pins one prompt per request to a slot: send one request per prompt",
      'prompt',
    );
  }
  throw badRequest(
    "'prompt' must be a string, a list of token ids (or of strings and token ids), or a list holding one such prompt",
    'prompt',
  );
}

function singlePrompt(p: unknown): string | undefined {
  if (typeof p === 'string') return p;
  if (isTokenList(p)) return p.map(String).join(' ');
  if (typeof p === 'object' && p !== null && !Array.isArray(p)) {
    const text = (p as { prompt_string?: unknown }).prompt_string;
    return typeof text === 'string' ? text : undefined;
  }
  return undefined;
}

/** Token ids, or llama-server's mixed list of strings and ids (one prompt: it holds at least one id). */
function isTokenList(p: unknown): p is Array<number | string> {
  return (
    Array.isArray(p) &&
    p.length > 0 &&
    p.some((t) => typeof t === 'number') &&
    p.every((t) => (typeof t === 'number' && Number.isInteger(t)) || typeof t === 'string')
  );
}
