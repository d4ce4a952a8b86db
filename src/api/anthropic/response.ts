/**
 * A chat completion answer → an Anthropic `message`, as llama-server's own `/v1/messages` builds it
 * (`to_json_anthropic` in its server-task.cpp): a thinking block (empty signature) first, then the text, then one
 * tool_use block per tool call; usage from the server's counts, `cache_read_input_tokens` being the reused prefix.
 */
type Json = Record<string, unknown>;

export interface AnthropicUsage {
  input_tokens: number;
  cache_read_input_tokens: number;
  output_tokens: number;
}

/** Chat `finish_reason` → Anthropic `stop_reason`: a limit is `max_tokens`, a stop with tool calls is `tool_use`. */
export function stopReason(finishReason: unknown, hasToolCalls: boolean): string {
  if (finishReason === 'length') return 'max_tokens';
  if (finishReason === 'tool_calls' || hasToolCalls) return 'tool_use';
  return 'end_turn';
}

/**
 * Usage from the answer's `timings` (cache_n, prompt_n, predicted_n) or, failing that, its OpenAI `usage`:
 * `input_tokens` are the prompt tokens the server had to process, as llama-server counts them.
 */
export function usageOf(timings: unknown, usage: unknown): AnthropicUsage {
  const t = (typeof timings === 'object' && timings !== null ? timings : {}) as Json;
  const u = (typeof usage === 'object' && usage !== null ? usage : {}) as Json;
  const details = (
    typeof u.prompt_tokens_details === 'object' && u.prompt_tokens_details !== null ? u.prompt_tokens_details : {}
  ) as Json;
  const cached = num(t.cache_n) ?? num(details.cached_tokens) ?? 0;
  const input = num(t.prompt_n) ?? Math.max(0, (num(u.prompt_tokens) ?? cached) - cached);
  return {
    input_tokens: input,
    cache_read_input_tokens: cached,
    output_tokens: num(u.completion_tokens) ?? num(t.predicted_n) ?? 0,
  };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A tool call's arguments as the `input` object; unparsable arguments give `{}` (as llama-server does). */
function toolInput(args: unknown): unknown {
  if (typeof args !== 'string') return {};
  try {
    const parsed = JSON.parse(args) as unknown;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

/** The Anthropic message for a chat completion answer (`chat` as the backend sent it). */
export function chatToMessage(chat: Json): Json {
  const choice = (Array.isArray(chat.choices) ? chat.choices[0] : undefined) as Json | undefined;
  const message = (choice?.message ?? {}) as Json;
  const content: Json[] = [];
  if (typeof message.reasoning_content === 'string' && message.reasoning_content !== '') {
    content.push({ type: 'thinking', thinking: message.reasoning_content, signature: '' });
  }
  if (typeof message.content === 'string' && message.content !== '')
    content.push({ type: 'text', text: message.content });
  const calls = Array.isArray(message.tool_calls) ? (message.tool_calls as Json[]) : [];
  for (const call of calls) {
    const fn = (call.function ?? {}) as Json;
    content.push({ type: 'tool_use', id: call.id ?? '', name: fn.name ?? '', input: toolInput(fn.arguments) });
  }
  return {
    id: chat.id,
    type: 'message',
    role: 'assistant',
    content,
    model: chat.model,
    stop_reason: stopReason(choice?.finish_reason, calls.length > 0),
    stop_sequence: null,
    usage: usageOf(chat.timings, chat.usage),
  };
}
