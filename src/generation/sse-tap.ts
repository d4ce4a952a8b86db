/**
 * Reads what the proxy needs from a backend's answer without touching the bytes that go to the client: llama.cpp's
 * `timings` (or, where a route gives none, what its `usage` says), an in-stream `error`, the final `[DONE]`. For a
 * stream, frames split across chunks are reassembled; only the unfinished tail is kept in memory.
 */
import { StringDecoder } from 'node:string_decoder';
import { AnswerText } from './answer-text.js';
import type { AnswerShape } from './answer-text.js';

export interface Timings {
  cache_n?: number;
  prompt_n?: number;
  prompt_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
}

/**
 * The tokens an answer leaves in its slot's KV (prompt and reply but its last token, as a save's `n_saved` counts),
 * when its timings say.
 */
export function tokensLeftInSlot(t: Timings | undefined): number | undefined {
  if (t?.cache_n === undefined || t.prompt_n === undefined) return undefined;
  return t.cache_n + t.prompt_n + Math.max(0, (t.predicted_n ?? 1) - 1);
}

/**
 * The timings of one answer object: its `timings` (every llama-server generation route has them, in the final or
 * usage event when streaming), else what its `usage` says (a non-streamed `/v1/responses` answer has only that):
 * cached tokens are `cache_n`, the rest of the prompt `prompt_n`. OpenAI (`prompt_tokens`) and Responses
 * (`input_tokens`, also under `response`) usage shapes.
 */
function timingsOf(event: unknown): Timings | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as { timings?: Timings; usage?: unknown; response?: { usage?: unknown } };
  if (e.timings && typeof e.timings === 'object') return e.timings;
  return timingsOfUsage(e.usage ?? e.response?.usage);
}

/** The usage fields read, in the OpenAI (`prompt_tokens`) and Responses (`input_tokens`) shapes. */
interface UsageFields {
  prompt_tokens?: unknown;
  input_tokens?: unknown;
  prompt_tokens_details?: { cached_tokens?: unknown };
  input_tokens_details?: { cached_tokens?: unknown };
  completion_tokens?: unknown;
  output_tokens?: unknown;
}

function timingsOfUsage(usage: unknown): Timings | undefined {
  if (typeof usage !== 'object' || usage === null) return undefined;
  const u = usage as UsageFields;
  const prompt = num(u.prompt_tokens) ?? num(u.input_tokens);
  if (prompt === undefined) return undefined;
  const cached = num(u.prompt_tokens_details?.cached_tokens) ?? num(u.input_tokens_details?.cached_tokens) ?? 0;
  const predicted = num(u.completion_tokens) ?? num(u.output_tokens);
  return {
    cache_n: cached,
    prompt_n: Math.max(0, prompt - cached),
    ...(predicted !== undefined && { predicted_n: predicted }),
  };
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * A whole JSON answer's timings (none when it is not JSON or says nothing) and, when asked for (`reply`: the route's
 * shape), the text it answered when that is all it answered (see AnswerText).
 */
export function readAnswer(buffer: Buffer, reply?: AnswerShape): { timings?: Timings; reply?: string } {
  let answer: unknown;
  try {
    answer = JSON.parse(buffer.toString('utf8'));
  } catch {
    return {};
  }
  const timings = timingsOf(answer);
  const text = reply ? new AnswerText(reply) : undefined;
  text?.addWhole(answer);
  return { ...(timings && { timings }), ...(text?.text !== undefined && { reply: text.text }) };
}

export class SseTap {
  error: unknown;
  done = false;
  private readonly decoder = new StringDecoder('utf8');
  private tail = '';
  private explicit: Timings | undefined;
  private fromUsage: Timings | undefined;
  /** Collected only when asked: the frames that may hold it are then parsed too. */
  private readonly answerText: AnswerText | undefined;

  /** `reply`: collect the text the stream answers, read in the shape of its route (see AnswerText). */
  constructor({ reply }: { reply?: AnswerShape } = {}) {
    this.answerText = reply ? new AnswerText(reply) : undefined;
  }

  /** The stream's `timings`, else what its `usage` said. */
  get timings(): Timings | undefined {
    return this.explicit ?? this.fromUsage;
  }

  /** The text the stream answered, when asked for and when that is all it answered. */
  get reply(): string | undefined {
    return this.answerText?.text;
  }

  /** Feed the next chunk as it went to the client. */
  push(chunk: Buffer): void {
    this.tail += this.decoder.write(chunk);
    let end: number;
    while ((end = frameEnd(this.tail)) >= 0) {
      const frame = this.tail.slice(0, end);
      this.tail = this.tail.slice(end).replace(/^(\r?\n){2}/, '');
      this.readFrame(frame);
    }
  }

  private readFrame(frame: string): void {
    for (const line of frame.split(/\r?\n/)) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') {
        this.done = true;
        continue;
      }
      // Parse only the frames that can carry what we look for; token frames are the vast majority.
      const wanted = data.includes('"timings"') || data.includes('"usage"') || data.includes('"error"');
      const text = this.answerText?.wants(data) === true;
      if (!wanted && !text) continue;
      try {
        const event = JSON.parse(data) as { timings?: Timings; error?: unknown };
        if (text) this.answerText!.addEvent(event);
        if (!wanted) continue;
        if (event.timings) this.explicit = event.timings;
        else this.fromUsage = timingsOf(event) ?? this.fromUsage;
        if (event.error) this.error = event.error;
      } catch {
        // Not JSON: not ours to judge, the client gets it as it came.
      }
    }
  }
}

function frameEnd(text: string): number {
  const lf = text.indexOf('\n\n');
  const crlf = text.indexOf('\r\n\r\n');
  if (lf < 0) return crlf;
  if (crlf < 0) return lf;
  return Math.min(lf, crlf);
}
