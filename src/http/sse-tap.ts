/**
 * Watches a copy of an SSE stream for the fields the proxy cares about (llama.cpp's `timings`, an in-stream
 * `error`, the final `[DONE]`) without touching the bytes that go to the client. Frames split across chunks are
 * reassembled; only the unfinished tail is kept in memory.
 */
import { StringDecoder } from 'node:string_decoder';

export interface Timings {
  cache_n?: number;
  prompt_n?: number;
  prompt_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
}

export class SseTap {
  timings: Timings | undefined;
  error: unknown;
  done = false;
  private readonly decoder = new StringDecoder('utf8');
  private tail = '';

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
      if (!data.includes('"timings"') && !data.includes('"error"')) continue;
      try {
        const event = JSON.parse(data) as { timings?: Timings; error?: unknown };
        if (event.timings) this.timings = event.timings;
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
