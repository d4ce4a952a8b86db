/**
 * `POST /v1/responses`: llama-server converts the request to a chat completion (instructions as a system message,
 * input items as messages, function call outputs as tool messages, function tools as chat tools: others such as
 * `namespace` and `web_search` are skipped), honours `id_slot`, and answers in the Responses
 * shape, as captured from the binary: a non-streamed answer carries `usage` (with `input_tokens_details.
 * cached_tokens`) but no `timings`; a stream sends `event:` + `data:` frames (response.created, in_progress,
 * output_item.added, content_part.added, output_text.delta…, output_text.done, content_part.done,
 * output_item.done, response.completed with `usage` inside the response and `timings` beside it).
 */
import { randomBytes } from 'node:crypto';
import { parseChatRequest } from './chat-request.js';
import { responsesToChatTools } from './chat-tools.js';
import {
  endSse,
  isObject,
  parseJsonBody,
  sendError,
  sendJson,
  startSse,
  writeSseEvent,
  type Exchange,
} from './http-io.js';
import type { ModelInstance } from './model-instance.js';
import { runTaskFor, timingsOf } from './task-http.js';
import type { ChatOutcome } from './chat-engine.js';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function idWith(prefix: string): string {
  let id = prefix;
  for (const b of randomBytes(32)) id += ALNUM[b % ALNUM.length];
  return id;
}

/** The chat messages the server renders for a Responses body, or the 400 message. */
function messagesOf(body: Record<string, unknown>): Array<{ role: string; content: string }> | string {
  const input = body.input;
  if (body.previous_response_id !== undefined) return "llama.cpp does not support 'previous_response_id'.";
  if (input === undefined) return "'input' is required";
  if (typeof input !== 'string' && !(Array.isArray(input) && input.every(isObject)))
    return "'input' must be a string or array of objects";
  const messages: Array<{ role: string; content: string }> = [];
  if (typeof body.instructions === 'string') messages.push({ role: 'system', content: body.instructions });
  if (typeof input === 'string') return [...messages, { role: 'user', content: input }];
  for (const item of input as Array<Record<string, unknown>>) {
    const message = itemMessage(item);
    if (typeof message === 'string') return message;
    if (message) messages.push(message);
  }
  return messages;
}

const isString = (v: unknown): v is string => typeof v === 'string';

/**
 * What one input item becomes, as llama-server places it (by its fields, then its type): an input message (a user,
 * system or developer role; `type` optional), an output message (the assistant role with `type: "message"`), a
 * function call (`call_id`, `name`, `arguments`), its output (`call_id`, `output`), a reasoning item (`summary`);
 * anything else is refused. A string content stands for one text part.
 */
function itemMessage(item: Record<string, unknown>): { role: string; content: string } | undefined | string {
  const { type, role, content } = item;
  const parts = isString(content)
    ? [{ type: role === 'assistant' ? 'output_text' : 'input_text', text: content }]
    : content;
  if (Array.isArray(parts) && isString(role) && ['user', 'system', 'developer'].includes(role)) {
    const wrong = parts.find(
      (p) => !isObject(p) || !['input_text', 'input_image', 'input_file'].includes(String(p.type)),
    );
    if (wrong) return "'type' must be one of 'input_text', 'input_image', or 'input_file'";
    return { role, content: textOf(parts) };
  }
  if (Array.isArray(parts) && role === 'assistant' && type === 'message') {
    if (parts.some((p) => !isObject(p) || p.type !== 'output_text')) return "'type' must be 'output_text'";
    if (parts.some((p) => !isString((p as Record<string, unknown>).text))) return "'Output text' requires 'text'";
    return { role, content: textOf(parts) };
  }
  if (type === 'function_call' && isString(item.arguments) && isString(item.call_id) && isString(item.name))
    return { role: 'assistant', content: '' };
  if (
    type === 'function_call_output' &&
    isString(item.call_id) &&
    (isString(item.output) || Array.isArray(item.output))
  )
    return { role: 'tool', content: textOf(item.output) };
  if (type === 'reasoning' && Array.isArray(item.summary)) {
    if (!Array.isArray(content)) return "item['content'] is not an array";
    if (content.length === 0) return "item['content'] is empty";
    if (!isObject(content[0]) || !isString(content[0].text)) return "item['content']['text'] is not a string";
    return undefined; // reasoning content, which this template does not render
  }
  return "Cannot determine type of 'item'";
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : '')).join('');
}

function usage(o: ChatOutcome): Record<string, unknown> {
  const input = o.cacheN + o.promptN;
  return {
    input_tokens: input,
    output_tokens: o.predicted.length,
    total_tokens: input + o.predicted.length,
    input_tokens_details: { cached_tokens: o.cacheN },
  };
}

/** Handles one Responses request on `inst`. */
export async function handleResponses(inst: ModelInstance, ex: Exchange): Promise<void> {
  const parsedJson = parseJsonBody(ex.req.body);
  if (!parsedJson.ok) return sendError(ex, 400, parsedJson.message);
  const body = isObject(parsedJson.value) ? parsedJson.value : {};
  const messages = messagesOf(body);
  if (typeof messages === 'string') return sendError(ex, 400, messages);
  if (body.tools !== undefined && !Array.isArray(body.tools))
    return sendError(ex, 400, "'tools' must be an array of objects");
  const { tools: _responsesTools, ...rest } = body;
  const tools = responsesToChatTools(body.tools);
  const chatBody = {
    ...rest,
    messages,
    ...(tools.length > 0 && { tools }),
    ...(typeof body.max_output_tokens === 'number' && { max_tokens: body.max_output_tokens }),
  };
  const parsed = parseChatRequest(Buffer.from(JSON.stringify(chatBody)));
  if (!parsed.ok) return sendError(ex, parsed.status, parsed.message);
  const { task, stream } = parsed;
  const respId = idWith('resp_');
  const msgId = idWith('msg_');
  const model = parsed.model ?? inst.name;
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    startSse(ex);
    const head = { id: respId, object: 'response', status: 'in_progress' };
    writeSseEvent(ex, 'response.created', { type: 'response.created', response: head });
    writeSseEvent(ex, 'response.in_progress', { type: 'response.in_progress', response: head });
    writeSseEvent(ex, 'response.output_item.added', {
      type: 'response.output_item.added',
      item: { content: [], id: msgId, role: 'assistant', status: 'in_progress', type: 'message' },
    });
    writeSseEvent(ex, 'response.content_part.added', {
      type: 'response.content_part.added',
      item_id: msgId,
      part: { type: 'output_text', text: '' },
    });
  };
  const onToken = stream
    ? (piece: string): void => {
        start();
        writeSseEvent(ex, 'response.output_text.delta', {
          type: 'response.output_text.delta',
          item_id: msgId,
          delta: piece,
        });
      }
    : () => undefined;
  const outcome = await runTaskFor(inst, ex, task, onToken);
  if (!outcome) return;
  const text = outcome.predicted.join('');
  const part = { type: 'output_text', annotations: [], logprobs: [], text };
  const created = Math.floor(Date.now() / 1000);
  if (!stream) {
    return sendJson(ex, 200, {
      completed_at: created,
      created_at: created,
      id: respId,
      model,
      object: 'response',
      output: [{ content: [part], id: msgId, role: 'assistant', status: 'completed', type: 'message' }],
      status: 'completed',
      usage: usage(outcome),
    });
  }
  start();
  const item = { type: 'message', status: 'completed', id: msgId, content: [part], role: 'assistant' };
  writeSseEvent(ex, 'response.output_text.done', { type: 'response.output_text.done', item_id: msgId, text });
  writeSseEvent(ex, 'response.content_part.done', { type: 'response.content_part.done', item_id: msgId, part });
  writeSseEvent(ex, 'response.output_item.done', { type: 'response.output_item.done', item });
  writeSseEvent(ex, 'response.completed', {
    type: 'response.completed',
    response: {
      id: respId,
      object: 'response',
      created_at: created,
      status: 'completed',
      model,
      output: [item],
      usage: usage(outcome),
    },
    timings: timingsOf(outcome),
  });
  endSse(ex);
}
