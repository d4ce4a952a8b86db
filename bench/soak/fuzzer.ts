/**
 * Sends the fuzz cases to the proxy, round after round, until the end of the load. Raw node:http requests on fresh
 * connections, so that paths go out exactly as written (`//slots`, `%73lots`, `..`) and headers such as
 * `Expect: 100-continue` are sent as a client would. Every request has a deadline.
 */
import http from 'node:http';
import { FUZZ_CASES } from './fuzz-cases.js';
import type { FuzzCase } from './fuzz-cases.js';

export interface FuzzOutcome {
  name: string;
  /** The HTTP status, 'lost' (no answer by the deadline) or 'connection' (closed without a status). */
  status: number | 'lost' | 'connection';
  startedAt: number;
  endedAt: number;
  /** An error status came with the OpenAI error envelope (`{"error": {"message": …}}`), or had no body at all. */
  envelope: boolean;
}

export interface FuzzerOptions {
  url: string;
  until: number;
  deadlineMs: number;
  /** Pause between two requests of a worker. */
  gapMs: number;
  workers: number;
  /** Cases to leave out (by name). */
  skip?: ReadonlySet<string>;
  onOutcome(outcome: FuzzOutcome): void;
}

export async function runFuzzer(opts: FuzzerOptions): Promise<void> {
  const cases = FUZZ_CASES.filter((c) => !opts.skip?.has(c.name));
  const onceSent = new Set<string>();
  let next = 0;
  const pick = (): FuzzCase => {
    for (;;) {
      const c = cases[next++ % cases.length]!;
      if (!c.once) return c;
      if (!onceSent.has(c.name)) {
        onceSent.add(c.name);
        return c;
      }
    }
  };
  const worker = async () => {
    while (Date.now() < opts.until) {
      opts.onOutcome(await send(opts.url, pick(), opts.deadlineMs));
      await new Promise((r) => setTimeout(r, opts.gapMs));
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, worker));
}

/** One fuzz request on a fresh connection. */
export function send(base: string, c: FuzzCase, deadlineMs: number): Promise<FuzzOutcome> {
  const { hostname, port } = new URL(base);
  const body = c.body?.();
  const startedAt = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (status: FuzzOutcome['status'], envelope = true) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ name: c.name, status, startedAt, endedAt: Date.now(), envelope });
    };
    const headers: Record<string, string> = { ...c.headers };
    if (body) headers['content-length'] = String(body.length);
    const req = http.request({ host: hostname, port, method: c.method, path: c.path, headers, agent: false });
    const timer = setTimeout(() => finish('lost'), deadlineMs);
    req.on('error', () => finish('connection'));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', () => finish('connection'));
      res.on('end', () => finish(res.statusCode ?? 0, (res.statusCode ?? 0) < 400 || hasEnvelope(Buffer.concat(chunks))));
    });
    req.end(body);
  });
}

function hasEnvelope(body: Buffer): boolean {
  if (body.length === 0) return true;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { message?: unknown } };
    return typeof parsed.error?.message === 'string';
  } catch {
    return false;
  }
}
