/**
 * The text an answer gave, when that is all it gave (no tool call, no reasoning): what a rescue's replay continues as
 * a last assistant message (llama-server's assistant prefill; see flow.replayOf), or after a raw prompt, so that the
 * state it saves holds the reply. Read from the backend's answer in the shape of its route: a chat completion (its
 * message, or its stream's deltas), a response (its output items, whole or in the stream's final
 * `response.completed` event) or a completion (llama-server's `content`, or the OpenAI `choices[0].text`, whole or
 * streamed).
 */

export type AnswerShape = 'chat' | 'responses' | 'completion';

export class AnswerText {
  private readonly parts: string[] = [];
  private other = false;

  constructor(private readonly shape: AnswerShape) {}

  /** The text, or undefined when the answer held anything else, or nothing. */
  get text(): string | undefined {
    const text = this.parts.join('');
    return this.other || text === '' ? undefined : text;
  }

  /** Whether a stream frame's data may hold text (only those are parsed). */
  wants(data: string): boolean {
    if (this.shape === 'chat') return data.includes('"choices"');
    if (this.shape === 'completion') return data.includes('"content"') || data.includes('"choices"');
    return data.includes('"response.completed"');
  }

  /** A whole answer, parsed. */
  addWhole(answer: unknown): void {
    if (typeof answer !== 'object' || answer === null) return;
    if (this.shape === 'chat')
      this.addMessage((answer as { choices?: Array<{ message?: unknown }> }).choices?.[0]?.message);
    else if (this.shape === 'completion') this.addCompletion(answer);
    else this.addOutput((answer as { output?: unknown }).output);
  }

  /** A stream event, parsed. */
  addEvent(event: unknown): void {
    if (typeof event !== 'object' || event === null) return;
    if (this.shape === 'chat') {
      this.addMessage((event as { choices?: Array<{ delta?: unknown }> }).choices?.[0]?.delta);
      return;
    }
    if (this.shape === 'completion') {
      this.addCompletion(event);
      return;
    }
    const e = event as { type?: unknown; response?: { output?: unknown } };
    if (e.type === 'response.completed') this.addOutput(e.response?.output);
  }

  /** A completion or one of its stream events: llama-server's `content`, or the OpenAI `choices[0].text`. */
  private addCompletion(answer: object): void {
    const a = answer as { content?: unknown; choices?: Array<{ text?: unknown }> };
    const text = typeof a.content === 'string' ? a.content : a.choices?.[0]?.text;
    if (typeof text === 'string') this.parts.push(text);
  }

  /** A chat message or delta: its content; a tool call or reasoning makes the answer more than text. */
  private addMessage(message: unknown): void {
    if (typeof message !== 'object' || message === null) return;
    const m = message as { content?: unknown; tool_calls?: unknown; reasoning_content?: unknown };
    if (m.tool_calls !== undefined || (typeof m.reasoning_content === 'string' && m.reasoning_content !== ''))
      this.other = true;
    if (typeof m.content === 'string') this.parts.push(m.content);
  }

  /** A response's output items: the assistant's messages' text; any other item (a function call, reasoning) is more. */
  private addOutput(output: unknown): void {
    if (!Array.isArray(output)) return;
    for (const item of output as unknown[]) {
      const i = item as { type?: unknown; role?: unknown; content?: unknown } | null;
      if (i?.type !== 'message' || i.role !== 'assistant' || !Array.isArray(i.content)) {
        this.other = true;
        continue;
      }
      for (const part of i.content as unknown[]) {
        const p = part as { type?: unknown; text?: unknown } | null;
        if (p?.type === 'output_text' && typeof p.text === 'string') this.parts.push(p.text);
        else this.other = true;
      }
    }
  }
}
