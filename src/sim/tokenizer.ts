/**
 * A deterministic fake tokenizer and chat template for the simulator.
 *
 * Tokens are plain strings (the pieces of text), so prefix reuse can be computed by comparing pieces, exactly
 * like llama-server compares token ids. The split is a cheap regex so that 100k-token prompts tokenize in a few
 * milliseconds; it only has to be stable, not linguistically meaningful.
 */

import { systemWithTools, type ChatTool } from './chat-tools.js';
import { missingKeyMessage, wrongTypeMessage } from './http-io.js';

/** One OpenAI chat message as the simulator understands it. */
export interface ChatMessage {
  role: string;
  content?: unknown;
}

/** Thrown for message content llama-server would refuse: the message and status of its error answer. */
export class TemplateError extends Error {
  /** 400 for what the server checks itself, 500 for what its JSON parsing throws or its media support refuses. */
  constructor(
    message: string,
    readonly status: 400 | 500 = 400,
  ) {
    super(message);
  }
}

/**
 * The Jinja template llama-server reports in `/props` for the rendering below: ChatML with a Qwen-style tools section
 * (chat-tools.ts). Checked on the real binary with this template (`--chat-template-file`), see README.md.
 */
export const CHAT_TEMPLATE =
  "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}" +
  '{{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}' +
  "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}" +
  '{{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}' +
  "{%- elif messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}{%- endif %}" +
  "{%- for message in messages %}{%- if not (loop.first and message.role == 'system') %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** The generation prompt appended after the last message. */
export const GENERATION_PROMPT = '<|im_start|>assistant\n';

// A word (with the whitespace in front of it), a single symbol (with its whitespace), or trailing whitespace.
// Newlines stand alone and other spaces stick to the next word, so a reply re-tokenizes exactly as it was
// generated when a client sends it back as history (real tokenizers mostly round-trip too).
const TOKEN_RE = /\n|[^\S\n]*[\p{L}\p{N}_]+|[^\S\n]*[^\s\p{L}\p{N}_]|[^\S\n]+/gu;

/** The text of a message's content: a string, null, or an array of `{type:'text', text}` parts. */
export function contentText(content: unknown): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new TemplateError("Expected 'content' to be a string or an array");
  let text = '';
  for (const part of content) {
    const p = (typeof part === 'object' && part !== null ? part : {}) as { type?: unknown; text?: unknown };
    if (p.type === 'text') {
      if (!('text' in p)) throw new TemplateError(PARSE_FAILED + missingKeyMessage('text'), 500);
      if (typeof p.text !== 'string') throw new TemplateError(PARSE_FAILED + wrongTypeMessage(p.text), 500);
      text += p.text;
    } else if (p.type === 'image_url' || p.type === 'input_audio') {
      // What a text-only llama-server says when it gets media.
      const media = p.type === 'image_url' ? 'image' : 'audio';
      throw new TemplateError(`${media} input is not supported - hint: ${MMPROJ_HINT}`, 500);
    } else {
      throw new TemplateError('unsupported content[].type');
    }
  }
  return text;
}

const PARSE_FAILED = 'Failed to parse messages: ';
const MMPROJ_HINT = 'if this is unexpected, you may need to provide the mmproj';

/**
 * Each message as the template renders it; with tools, the first part is the system part with the tools section
 * (the first message's content before it when that message is a system message). Every part ends with a newline.
 */
export function renderedMessages(messages: readonly ChatMessage[], tools: readonly ChatTool[] = []): string[] {
  const parts: string[] = [];
  let rest = messages;
  if (tools.length > 0) {
    const first = messages[0];
    const system = first?.role === 'system' ? contentText(first.content) : undefined;
    parts.push(`<|im_start|>system\n${systemWithTools(system, tools)}<|im_end|>\n`);
    if (system !== undefined) rest = messages.slice(1);
  }
  for (const m of rest) parts.push(`<|im_start|>${String(m.role)}\n${contentText(m.content)}<|im_end|>\n`);
  return parts;
}

/**
 * Renders messages (and tools) with the template and the generation prompt, as `/apply-template` does. A last
 * message from the assistant is continued (llama-server's assistant prefill, on by default): its content follows
 * the generation prompt, with no end of turn, as the reply it was sampled as would have left it.
 */
export function renderChat(messages: readonly ChatMessage[], tools: readonly ChatTool[] = []): string {
  const { history, prefill } = splitPrefill(messages);
  return renderedMessages(history, tools).join('') + GENERATION_PROMPT + prefill;
}

/** The messages the template renders whole, and the text of a last assistant message to continue ('' if none). */
function splitPrefill(messages: readonly ChatMessage[]): { history: readonly ChatMessage[]; prefill: string } {
  const last = messages.at(-1);
  if (messages.length < 2 || last?.role !== 'assistant') return { history: messages, prefill: '' };
  return { history: messages.slice(0, -1), prefill: contentText(last.content) };
}

// Rendered message → its tokens. Conversations resend their whole history every turn; tokenizing only the new
// messages keeps the simulator's own CPU time (which a scaled-down benchmark would magnify) small.
const MESSAGE_TOKENS = new Map<string, string[]>();
const MESSAGE_TOKENS_MAX = 1024;

/**
 * Tokens of `renderChat(messages, tools)`, tokenized message by message. Equal to `tokenize(renderChat(…))`
 * because every rendered message ends with a newline, which is always a token of its own.
 */
export function tokenizeChat(messages: readonly ChatMessage[], tools: readonly ChatTool[] = []): string[] {
  const { history, prefill } = splitPrefill(messages);
  const out: string[] = [];
  for (const rendered of renderedMessages(history, tools)) {
    let tokens = MESSAGE_TOKENS.get(rendered);
    if (!tokens) {
      tokens = tokenize(rendered);
      if (MESSAGE_TOKENS.size >= MESSAGE_TOKENS_MAX) MESSAGE_TOKENS.delete(MESSAGE_TOKENS.keys().next().value!);
      MESSAGE_TOKENS.set(rendered, tokens);
    }
    for (const t of tokens) out.push(t);
  }
  for (const t of tokenize(GENERATION_PROMPT + prefill)) out.push(t);
  return out;
}

/** Splits text into token pieces; joining the pieces gives the text back. */
export function tokenize(text: string): string[] {
  return text.match(TOKEN_RE) ?? [];
}

/** Length of the longest common prefix of two token lists. */
export function commonPrefixLength(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** FNV-1a over a string: a fast, stable 32-bit seed (used for reply words and fingerprints). */
export function hash32(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Maps token pieces to numeric ids for `/tokenize` and `/detokenize`. Ids are handed out on first sight, so they
 * are stable for the life of the process, which is all a client can rely on with a real server too.
 */
export class Vocabulary {
  static readonly BOS = { id: 1, piece: '<s>' };
  /** `n_vocab` as `/v1/models` reports it: ids below it are the model's own, whether handed out yet or not. */
  static readonly SIZE = 32000;
  private readonly ids = new Map<string, number>([
    ['<unk>', 0],
    ['<s>', 1],
    ['</s>', 2],
  ]);
  private readonly pieces: string[] = ['<unk>', '<s>', '</s>'];

  /** The id of a piece, allocating one when the piece is new. */
  idOf(piece: string): number {
    let id = this.ids.get(piece);
    if (id === undefined) {
      id = this.pieces.length;
      this.ids.set(piece, id);
      this.pieces.push(piece);
    }
    return id;
  }

  /** Whether a prompt may carry this id (llama-server refuses others: "Prompt contains invalid tokens"). */
  knows(id: number): boolean {
    return id >= 0 && (id < Vocabulary.SIZE || this.pieceOf(id) !== undefined);
  }

  /** The piece of an id, or undefined for an id never handed out. */
  pieceOf(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.pieces[id] : undefined;
  }
}
