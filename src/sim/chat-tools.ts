/**
 * Tool definitions in the prompt, as llama-server renders them with `--jinja` and a tools-aware ChatML template
 * (Qwen 2.5 / Qwen 3 / Hermes): a `# Tools` section in the system part, at the very start of the prompt, with each
 * tool serialised by Jinja's `tojson` (Python's `json.dumps`: `", "` and `": "` separators, keys in the order sent).
 * Every route renders through here: chat completions takes `tools` as sent; `/v1/responses` and `/v1/messages`
 * convert theirs to chat tools first, as the real server's conversions do (server-chat.cpp).
 */
import { isObject } from './http-io.js';

/** One OpenAI chat tool as the template sees it (`{type: 'function', function: {...}}`). */
export type ChatTool = Record<string, unknown>;

const TOOLS_HEAD =
  '# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>';
const TOOLS_TAIL =
  '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>';

/**
 * The system message's content with the tools section after it (the template's `system content + "\n\n"` when the
 * first message is a system message, else the section alone).
 */
export function systemWithTools(system: string | undefined, tools: readonly ChatTool[]): string {
  let out = system === undefined ? '' : `${system}\n\n`;
  out += TOOLS_HEAD;
  for (const tool of tools) out += `\n${pyJson(tool)}`;
  return out + TOOLS_TAIL;
}

/** Jinja's `tojson` as llama.cpp's engine prints it (measured): Python's `json.dumps` with `ensure_ascii=False`. */
export function pyJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`;
  if (isObject(value))
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${pyJson(v)}`)
      .join(', ')}}`;
  return JSON.stringify(value) ?? 'null';
}

/**
 * A chat body's `tools` (absent = none), or the message of the 500 llama-server answers (measured on the binary):
 * not an array, or a tool that is not a `function` tool with a `function` object.
 */
export function parseChatTools(tools: unknown): ChatTool[] | string {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools))
    return `Failed to parse tools: Expected 'tools' to be an array, got ${JSON.stringify(tools)}; tools = ${JSON.stringify(tools)}`;
  for (const tool of tools) {
    if (!isObject(tool) || tool.type !== 'function' || !isObject(tool.function)) {
      return `Failed to parse tools: Unsupported tool type: ${JSON.stringify(tool)}; tools = ${JSON.stringify(tools, null, 2)}`;
    }
  }
  return tools as ChatTool[];
}

/** `/v1/responses` tools → chat tools: function tools only (others are skipped), `strict: true` when absent. */
export function responsesToChatTools(tools: unknown): ChatTool[] {
  if (!Array.isArray(tools)) return [];
  const out: ChatTool[] = [];
  for (const tool of tools) {
    if (!isObject(tool) || tool.type !== 'function') continue;
    const { type: _type, ...fn } = tool;
    out.push({ type: 'function', function: { ...fn, ...(!('strict' in fn) && { strict: true }) } });
  }
  return out;
}

/** Anthropic tools → chat tools: name, description ('' when absent), `input_schema` as parameters ({} when absent). */
export function anthropicToChatTools(tools: unknown): ChatTool[] {
  if (!Array.isArray(tools)) return [];
  return tools.map((tool) => {
    const t = isObject(tool) ? tool : {};
    return {
      type: 'function',
      function: {
        name: typeof t.name === 'string' ? t.name : '',
        description: typeof t.description === 'string' ? t.description : '',
        parameters: t.input_schema !== undefined ? t.input_schema : {},
      },
    };
  });
}
