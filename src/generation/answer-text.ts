/**
 * The text an answer gave, when that is all it gave (no tool call, no reasoning): what a rescue's replay continues as
 * a last assistant message (llama-server's assistant prefill; see flow.replayOf), so that the state it saves holds
 * the reply. Read from the backend's answer in the shape of its route: a chat completion (its message, or its
 * stream's deltas) or a response (its output items, whole or in the stream's final `response.completed` event).
 */

export type AnswerShape = 'chat' | 'responses';

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
    return this.shape === 'chat' ? data.includes('"choices"') : data.includes('"response.completed"');
  }

  /** A whole answer, parsed. */
  addWhole(answer: unknown): void {
    if (typeof answer !== 'object' || answer === null) return;
    if (this.shape === 'chat')
      this.addMessage((answer as { choices?: Array<{ message?: unknown }> }).choices?.[0]?.message);
    else this.addOutput((answer as { output?: unknown }).output);
  }

  /** A stream event, parsed. */
  addEvent(event: unknown): void {
    if (typeof event !== 'object' || event === null) return;
    if (this.shape === 'chat') {
      this.addMessage((event as { choices?: Array<{ delta?: unknown }> }).choices?.[0]?.delta);
      return;
    }
    const e = event as { type?: unknown; response?: { output?: unknown } };
    if (e.type === 'response.completed') this.addOutput(e.response?.output);
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
