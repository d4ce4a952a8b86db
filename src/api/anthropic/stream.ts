/**
 * A chat completions SSE stream → Anthropic's event sequence, chunk by chunk (frames may be split anywhere, even
 * inside a UTF-8 character): message_start (with the prompt's usage) and a ping, then per content block a
 * content_block_start, its deltas (thinking_delta, text_delta, input_json_delta) and content_block_stop (a thinking
 * block gets an empty signature_delta first, as llama-server sends), then message_delta with the stop reason and the
 * whole usage (output, input and cache_read_input_tokens), then message_stop. An error event from the backend
 * becomes Anthropic's `error` event and ends the stream.
 *
 * Blocks follow each other as in Anthropic's API (one open at a time, indices in order); llama-server's own route
 * numbers them the same way.
 */
import { StringDecoder } from 'node:string_decoder';
import type { StreamConversion } from '../../generation/adapter.js';
import { anthropicError } from './errors.js';
import { stopReason, usageOf } from './response.js';
import type { AnthropicUsage } from './response.js';

type Json = Record<string, unknown>;

interface OpenBlock {
  kind: 'thinking' | 'text' | 'tool_use';
  index: number;
}

/** Format one Anthropic SSE event. */
function sseEvent(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

export class AnthropicStream implements StreamConversion {
  readonly contentType = 'text/event-stream';
  private readonly decoder = new StringDecoder('utf8');
  private tail = '';
  private started = false;
  private finished = false;
  private open: OpenBlock | undefined;
  private nextIndex = 0;
  /** Chat tool-call index → its block index. */
  private readonly toolBlocks = new Map<number, number>();
  private finishReason: unknown;
  private timings: unknown;
  private usage: unknown;
  private id: unknown;
  private model: unknown;

  push(chunk: Buffer): string {
    this.tail += this.decoder.write(chunk);
    let out = '';
    for (let end = frameEnd(this.tail); end.at >= 0; end = frameEnd(this.tail)) {
      const frame = this.tail.slice(0, end.at);
      this.tail = this.tail.slice(end.at + end.length);
      out += this.frame(frame);
    }
    return out;
  }

  end(): string {
    this.tail += this.decoder.end();
    let out = this.tail.trim() === '' ? '' : this.frame(this.tail);
    this.tail = '';
    // A backend stream that stopped before its finish is not a complete answer: say so rather than end quietly.
    if (!this.finished && this.finishReason === undefined)
      out += this.error('the backend stream ended before the answer was complete');
    else out += this.finish();
    return out;
  }

  error(message: string): string {
    if (this.finished) return '';
    this.finished = true;
    return sseEvent('error', anthropicError(502, message));
  }

  private frame(frame: string): string {
    const data = frame
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
    if (data === '' || this.finished) return '';
    if (data.trim() === '[DONE]') return this.finish();
    let event: Json;
    try {
      event = JSON.parse(data) as Json;
    } catch {
      return '';
    }
    if (event.error !== undefined) return this.backendError(event.error);
    this.id ??= event.id;
    this.model ??= event.model;
    if (event.timings !== undefined) this.timings = event.timings;
    if (event.usage !== undefined && event.usage !== null) this.usage = event.usage;
    const choice = (Array.isArray(event.choices) ? event.choices[0] : undefined) as Json | undefined;
    if (!choice) return '';
    let out = '';
    const delta = (choice.delta ?? {}) as Json;
    if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '') {
      out += this.blockDelta('thinking', { type: 'thinking_delta', thinking: delta.reasoning_content });
    }
    if (typeof delta.content === 'string' && delta.content !== '')
      out += this.blockDelta('text', { type: 'text_delta', text: delta.content });
    if (Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls as Json[]) out += this.toolDelta(call);
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
      out += this.start();
      this.finishReason = choice.finish_reason;
    }
    return out;
  }

  /** message_start (once), when the first content arrives: the prompt is processed, its usage known. */
  private start(): string {
    if (this.started) return '';
    this.started = true;
    const usage = usageOf(this.timings, this.usage);
    const message = {
      id: this.id,
      type: 'message',
      role: 'assistant',
      content: [],
      model: this.model,
      stop_reason: null,
      stop_sequence: null,
      usage: {
        cache_read_input_tokens: usage.cache_read_input_tokens,
        input_tokens: usage.input_tokens,
        output_tokens: 0,
      },
    };
    return sseEvent('message_start', { type: 'message_start', message }) + sseEvent('ping', { type: 'ping' });
  }

  private blockDelta(kind: 'thinking' | 'text', delta: Json): string {
    let out = this.start();
    if (this.open?.kind !== kind)
      out += this.openBlock(
        kind,
        kind === 'thinking' ? { type: 'thinking', thinking: '' } : { type: 'text', text: '' },
      );
    return out + sseEvent('content_block_delta', { type: 'content_block_delta', index: this.open!.index, delta });
  }

  private toolDelta(call: Json): string {
    let out = this.start();
    const toolIndex = typeof call.index === 'number' ? call.index : 0;
    const fn = (call.function ?? {}) as Json;
    let index = this.toolBlocks.get(toolIndex);
    if (index === undefined) {
      out += this.openBlock('tool_use', { type: 'tool_use', id: call.id ?? '', name: fn.name ?? '', input: {} });
      index = this.open!.index;
      this.toolBlocks.set(toolIndex, index);
    }
    if (typeof fn.arguments === 'string' && fn.arguments !== '') {
      out += sseEvent('content_block_delta', {
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: fn.arguments },
      });
    }
    return out;
  }

  private openBlock(kind: OpenBlock['kind'], contentBlock: Json): string {
    const out = this.closeBlock();
    this.open = { kind, index: this.nextIndex++ };
    return (
      out +
      sseEvent('content_block_start', {
        type: 'content_block_start',
        index: this.open.index,
        content_block: contentBlock,
      })
    );
  }

  private closeBlock(): string {
    const open = this.open;
    if (!open) return '';
    this.open = undefined;
    const signature =
      open.kind === 'thinking'
        ? sseEvent('content_block_delta', {
            type: 'content_block_delta',
            index: open.index,
            delta: { type: 'signature_delta', signature: '' },
          })
        : '';
    return signature + sseEvent('content_block_stop', { type: 'content_block_stop', index: open.index });
  }

  private finish(): string {
    if (this.finished) return '';
    let out = this.start() + this.closeBlock();
    this.finished = true;
    const usage: AnthropicUsage = usageOf(this.timings, this.usage);
    out += sseEvent('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason(this.finishReason, this.toolBlocks.size > 0), stop_sequence: null },
      usage: {
        output_tokens: usage.output_tokens,
        input_tokens: usage.input_tokens,
        cache_read_input_tokens: usage.cache_read_input_tokens,
      },
    });
    return out + sseEvent('message_stop', { type: 'message_stop' });
  }

  private backendError(error: unknown): string {
    const inner = (typeof error === 'object' && error !== null ? error : {}) as Json;
    const message =
      typeof inner.message === 'string' ? inner.message : typeof error === 'string' ? error : 'backend error';
    const status = typeof inner.code === 'number' ? inner.code : 500;
    if (this.finished) return '';
    this.finished = true;
    return sseEvent('error', anthropicError(status, message));
  }
}

/** Where the first complete frame ends (its blank line), and the separator's length; `at` -1 when none yet. */
function frameEnd(text: string): { at: number; length: number } {
  const lf = text.indexOf('\n\n');
  const crlf = text.indexOf('\r\n\r\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { at: crlf, length: 4 };
  return { at: lf, length: 2 };
}
