/**
 * `POST /v1/responses` (Codex and other Responses clients), stream or not, sent to the backend's `/v1/responses`
 * pinned. The canonical prompt matches the chat completion the server renders from it, so a conversation keeps its
 * key and blocks whichever of the two APIs carries it: `instructions` first (a system message), then per input item
 * the text a chat message would have as content: a message's content (a string, or its `input_text` /
 * `output_text` / `text` parts joined with "\n"), a `function_call_output`'s output. Function calls and reasoning
 * items carry no content (as an assistant message with only `tool_calls`); function tools go after `instructions`
 * as in chat (tools-part.ts). `prompt_cache_key` names the session. An assistant message sent without its
 * `type` (valid for the Responses API) is forwarded with `"type": "message"`, which llama-server needs to place it.
 */
import { badRequest } from '../../errors.js';
import { upstreamBody } from '../../http/json-body.js';
import type { GenerationAdapter, GenerationRequest } from '../adapter.js';
import { endsWithAssistant } from './chat.js';
import { commonFields, llamaFields, objectBody, optionalString, partsOf } from '../body-fields.js';
import { withToolsPart } from '../../prompt/tools-part.js';

export const responsesAdapter: GenerationAdapter = {
  api: 'responses',
  read(raw) {
    const body = withTypedAssistantItems(objectBody(raw));
    const { model, stream } = commonFields(body);
    const instructions = optionalString(body, 'instructions');
    const session = optionalString(body, 'prompt_cache_key');
    return {
      model,
      parts: withToolsPart(
        partsOf([instructions, ...inputTexts(body.input)]),
        partsOf([instructions]).length === 1, // the instructions are the first part (as partsOf strips them)
        body.tools,
      ),
      stream,
      ...llamaFields(body),
      ...(session !== undefined && { session }),
      backendCall: (pin) => ({ path: '/v1/responses', body: upstreamBody(body, { ...pin }) }),
      ...replayWithReply(body),
    };
  },
};

/**
 * The replay with the answer's text as a last assistant input item (see ReplayWithReply; checked on the real
 * server: a 2,361-token input and its 40-token answer came back as 2,401 tokens, and the next turn reused them);
 * none when the input already ended with the assistant's.
 */
function replayWithReply(body: Record<string, unknown>): Pick<GenerationRequest, 'replayWithReply'> {
  const input = typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : body.input;
  if (!Array.isArray(input) || endsWithAssistant(input)) return {};
  return {
    replayWithReply: {
      answerShape: 'responses',
      call: (pin, reply) => ({
        path: '/v1/responses',
        body: JSON.stringify({
          ...body,
          ...pin,
          input: [...input, { type: 'message', role: 'assistant', content: reply }],
        }),
      }),
    },
  };
}

/**
 * The body with `"type": "message"` on each assistant input item that has no type: the Responses API takes such an
 * item as a message, but llama-server answers 400 "Cannot determine type of 'item'" to it (it places an untyped item
 * only by a user, system or developer role). Untouched, and so forwarded byte for byte, when none lacks it.
 */
function withTypedAssistantItems(body: Record<string, unknown>): Record<string, unknown> {
  const input = body.input;
  if (!Array.isArray(input) || !input.some(isUntypedAssistant)) return body;
  return { ...body, input: input.map((item) => (isUntypedAssistant(item) ? { type: 'message', ...item } : item)) };
}

function isUntypedAssistant(item: unknown): item is Record<string, unknown> {
  return (
    typeof item === 'object' && item !== null && !('type' in item) && (item as { role?: unknown }).role === 'assistant'
  );
}

function inputTexts(input: unknown): string[] {
  if (input === undefined) throw badRequest("'input' is required", 'input');
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) throw badRequest("'input' must be a string or an array of objects", 'input');
  return input.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw badRequest(`'input[${i}]' must be an object`, `input[${i}]`);
    return itemText(item as Record<string, unknown>);
  });
}

/** What an input item puts into the prompt as message content ('' for none). */
function itemText(item: Record<string, unknown>): string {
  const type = item.type;
  if (type === undefined || type === 'message') return contentText(item.content);
  if (type === 'function_call_output' || type === 'custom_tool_call_output') return contentText(item.output);
  return '';
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part) => (typeof part === 'object' && part !== null ? (part as { text?: unknown }).text : undefined))
    .filter((text): text is string => typeof text === 'string')
    .join('\n');
}
