/**
 * Anthropic Messages request → chat completions request, the conversion llama-server's own `/v1/messages` does
 * (`server_chat_convert_anthropic_to_oai` in its server-chat.cpp), so that the prompt the server renders, and so the
 * answer, is the same as through its own route. Done by the proxy because that route ignores `id_slot`.
 *
 * Kept, as llama-server keeps them: messages, system, tools, tool_choice, stop_sequences, max_tokens (default 4096),
 * temperature, top_p, top_k, stream, chat_template_kwargs and thinking. Added for the proxy: `model` (llama-swap and
 * router mode route by it) and, for a stream, `timings_per_token` (the first token's event then carries the
 * prompt's cache counts for `message_start`). Everything else (metadata, context_management, output_config…) is
 * dropped, as there.
 *
 * Canonical on purpose, so that churn between requests does not reach the key: `cache_control` markers are not
 * copied; the billing header's `cch=` stamp at the very start of `system` is normalised the way llama-server does it.
 */
import { badRequest } from '../../errors.js';

type Json = Record<string, unknown>;

/** A validated Messages body (the fields the conversion reads). */
export interface MessagesBody extends Json {
  messages: Json[];
  model?: string;
  stream?: boolean;
}

/** The chat completions body for the backend, without the pin. */
export interface ConvertedChat extends Json {
  messages: Json[];
}

/** llama-server's default when a request names no `max_tokens` (Anthropic requires it; llama-server does not). */
const DEFAULT_MAX_TOKENS = 4096;

const ROLES = new Set(['user', 'assistant', 'system']);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Return the body typed, or throw a 400 ProxyError whose message and `param` name the offending field. */
export function validateMessagesBody(body: unknown): MessagesBody {
  if (!isObject(body)) throw badRequest('request body must be a JSON object');
  const {
    messages,
    model,
    stream,
    system,
    tools,
    tool_choice: toolChoice,
    stop_sequences: stops,
    max_tokens: maxTokens,
  } = body;
  if (messages === undefined) throw badRequest('messages: Field required', 'messages');
  if (!Array.isArray(messages) || messages.length === 0)
    throw badRequest('messages: must be a non-empty array', 'messages');
  messages.forEach(validateMessage);
  if (model !== undefined && typeof model !== 'string') throw badRequest('model: must be a string', 'model');
  if (stream !== undefined && typeof stream !== 'boolean') throw badRequest('stream: must be a boolean', 'stream');
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && (maxTokens as number) >= 1)) {
    throw badRequest('max_tokens: must be an integer >= 1', 'max_tokens');
  }
  for (const name of ['temperature', 'top_p'] as const) {
    if (body[name] !== undefined && typeof body[name] !== 'number') throw badRequest(`${name}: must be a number`, name);
  }
  if (body.top_k !== undefined && !Number.isInteger(body.top_k)) throw badRequest('top_k: must be an integer', 'top_k');
  if (system !== undefined && typeof system !== 'string') validateBlocks(system, 'system');
  if (tools !== undefined) validateTools(tools);
  if (toolChoice !== undefined && !(isObject(toolChoice) && typeof toolChoice.type === 'string')) {
    throw badRequest('tool_choice: must be an object with a string type', 'tool_choice');
  }
  if (stops !== undefined && !(Array.isArray(stops) && stops.every((s) => typeof s === 'string'))) {
    throw badRequest('stop_sequences: must be an array of strings', 'stop_sequences');
  }
  for (const name of ['metadata', 'thinking', 'chat_template_kwargs'] as const) {
    if (body[name] !== undefined && !isObject(body[name])) throw badRequest(`${name}: must be an object`, name);
  }
  return body as MessagesBody;
}

function validateMessage(message: unknown, i: number): void {
  const at = `messages.${i}`;
  if (!isObject(message)) throw badRequest(`${at}: must be an object`, at);
  // `system` is not in Anthropic's schema, yet Claude Code sends one inside `messages`; llama-server renders it.
  if (typeof message.role !== 'string' || !ROLES.has(message.role)) {
    throw badRequest(`${at}.role: must be one of 'user', 'assistant' or 'system'`, `${at}.role`);
  }
  if (message.content === undefined) throw badRequest(`${at}.content: Field required`, `${at}.content`);
  if (typeof message.content !== 'string') validateBlocks(message.content, `${at}.content`);
}

/** Content blocks: objects with a string `type`; the fields the conversion reads have their types. */
function validateBlocks(blocks: unknown, at: string): void {
  if (!Array.isArray(blocks)) throw badRequest(`${at}: must be a string or an array of content blocks`, at);
  blocks.forEach((block, j) => {
    const here = `${at}.${j}`;
    if (!isObject(block) || typeof block.type !== 'string')
      throw badRequest(`${here}: must be a content block with a string type`, here);
    if (block.type === 'text' && typeof block.text !== 'string')
      throw badRequest(`${here}.text: must be a string`, `${here}.text`);
    if (block.type === 'tool_use') {
      if (typeof block.id !== 'string') throw badRequest(`${here}.id: must be a string`, `${here}.id`);
      if (typeof block.name !== 'string') throw badRequest(`${here}.name: must be a string`, `${here}.name`);
      if (block.input !== undefined && !isObject(block.input))
        throw badRequest(`${here}.input: must be an object`, `${here}.input`);
    }
    if (block.type === 'tool_result') {
      if (typeof block.tool_use_id !== 'string')
        throw badRequest(`${here}.tool_use_id: must be a string`, `${here}.tool_use_id`);
      const content = block.content;
      if (content !== undefined && typeof content !== 'string') validateBlocks(content, `${here}.content`);
    }
  });
}

function validateTools(tools: unknown): void {
  if (!Array.isArray(tools)) throw badRequest('tools: must be an array', 'tools');
  tools.forEach((tool, i) => {
    const at = `tools.${i}`;
    if (!isObject(tool)) throw badRequest(`${at}: must be an object`, at);
    if (typeof tool.name !== 'string' || tool.name === '')
      throw badRequest(`${at}.name: must be a non-empty string`, `${at}.name`);
    if (tool.input_schema !== undefined && !isObject(tool.input_schema)) {
      throw badRequest(`${at}.input_schema: must be an object`, `${at}.input_schema`);
    }
  });
}

/** The chat completions body llama-server would build from this Messages body (see the module comment). */
export function toChatBody(body: MessagesBody): ConvertedChat {
  const chat: ConvertedChat = { messages: [] };
  if (body.model !== undefined) chat.model = body.model;
  if (body.system !== undefined && body.system !== null)
    chat.messages.push({ role: 'system', content: systemText(body.system) });
  for (const message of body.messages) chat.messages.push(...convertMessage(message));
  if (Array.isArray(body.tools)) chat.tools = body.tools.map(convertTool);
  const choice = isObject(body.tool_choice) ? body.tool_choice.type : undefined;
  if (choice === 'auto') chat.tool_choice = 'auto';
  else if (choice === 'any' || choice === 'tool') chat.tool_choice = 'required';
  if (body.stop_sequences !== undefined) chat.stop = body.stop_sequences;
  chat.max_tokens = body.max_tokens ?? DEFAULT_MAX_TOKENS;
  for (const key of ['temperature', 'top_p', 'top_k', 'stream', 'chat_template_kwargs']) {
    if (body[key] !== undefined) chat[key] = body[key];
  }
  const thinking = isObject(body.thinking) ? body.thinking : undefined;
  if (thinking?.type === 'enabled')
    chat.thinking_budget_tokens = Number.isInteger(thinking.budget_tokens) ? thinking.budget_tokens : 10000;
  if (body.stream === true) chat.timings_per_token = true;
  return chat;
}

/** `system` as one string: its text blocks joined without a separator, each billing header normalised. */
function systemText(system: unknown): string {
  if (typeof system === 'string') return normaliseBillingHeader(system);
  if (!Array.isArray(system)) return '';
  return system
    .filter((b) => isObject(b) && b.type === 'text')
    .map((b) => normaliseBillingHeader(String((b as Json).text ?? '')))
    .join('');
}

const BILLING_HEADER = 'x-anthropic-billing-header:';
const CCH_LENGTH = 5;

/**
 * Claude Code's billing header may carry a `cch=xxxxx;` stamp that changes on every request and would end any prefix
 * reuse right there. llama-server overwrites those five characters with `f`; so does the proxy, so that the key and
 * the rendered prompt stay the same as with its own route.
 */
export function normaliseBillingHeader(text: string): string {
  if (!text.startsWith(BILLING_HEADER)) return text;
  const at = text.indexOf('cch=', BILLING_HEADER.length);
  if (at < 0) return text;
  const value = at + 4;
  if (value + CCH_LENGTH >= text.length || text[value + CCH_LENGTH] !== ';') return text;
  return text.slice(0, value) + 'f'.repeat(CCH_LENGTH) + text.slice(value + CCH_LENGTH);
}

/** One Anthropic message → the chat messages llama-server makes of it (an assistant turn, then tool results). */
function convertMessage(message: Json): Json[] {
  const { role, content } = message;
  if (typeof content === 'string') return [{ role, content }];
  if (!Array.isArray(content)) return [{ role, content }];
  const parts: Json[] = [];
  const toolCalls: Json[] = [];
  const toolResults: Json[] = [];
  let reasoning = '';
  for (const block of content as Json[]) {
    if (block.type === 'text') parts.push({ type: 'text', text: block.text });
    else if (block.type === 'thinking') reasoning += typeof block.thinking === 'string' ? block.thinking : '';
    else if (block.type === 'image') {
      const url = imageUrl(block.source);
      if (url !== undefined) parts.push({ type: 'image_url', image_url: { url } });
    } else if (block.type === 'tool_use') {
      toolCalls.push({
        id: block.id,
        type: 'function',
        function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) },
      });
    } else if (block.type === 'tool_result') {
      toolResults.push({ role: 'tool', tool_call_id: block.tool_use_id, content: toolResultContent(block.content) });
    }
  }
  const out: Json[] = [];
  if (parts.length > 0 || toolCalls.length > 0 || reasoning !== '') {
    const converted: Json = { role, content: parts.length > 0 ? parts : '' };
    if (toolCalls.length > 0) converted.tool_calls = toolCalls;
    if (reasoning !== '') converted.reasoning_content = reasoning;
    out.push(converted);
  }
  return out.concat(toolResults);
}

function imageUrl(source: unknown): string | undefined {
  if (!isObject(source)) return undefined;
  if (source.type === 'base64')
    return `data:${typeof source.media_type === 'string' ? source.media_type : 'image/jpeg'};base64,${String(source.data ?? '')}`;
  if (source.type === 'url') return String(source.url ?? '');
  return undefined;
}

/** A tool result's content: a string; text-only blocks joined into one string; with images, the parts. */
function toolResultContent(content: unknown): string | Json[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const parts: Json[] = [];
  let text = '';
  let images = false;
  for (const block of content as Json[]) {
    if (block.type === 'text') {
      const t = typeof block.text === 'string' ? block.text : '';
      text += t;
      parts.push({ type: 'text', text: t });
    } else if (block.type === 'image') {
      images = true;
      const url = imageUrl(block.source);
      if (url !== undefined) parts.push({ type: 'image_url', image_url: { url } });
    }
  }
  return images ? parts : text;
}

function convertTool(tool: Json): Json {
  return {
    type: 'function',
    function: {
      name: tool.name,
      description: typeof tool.description === 'string' ? tool.description : '',
      parameters: tool.input_schema ?? {},
    },
  };
}
