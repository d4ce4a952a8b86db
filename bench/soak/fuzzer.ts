/**
 * Sends the fuzz cases to the proxy, round after round, until the end of the load. Raw node:http requests on fresh
 * connections, so that paths go out exactly as written (`//slots`, `%73lots`, `..`) and headers such as
 * `Expect: 100-continue` are sent as a client would. Every request has a deadline.
 */
import http from 'node:http';
import net from 'node:net';
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
  /** Epoch ms at which the cases sent once go out. */
  onceAt: number;
  /** Cases to leave out (by name). */
  skip?: ReadonlySet<string>;
  onOutcome(outcome: FuzzOutcome): void;
}

/**
 * Round-robin workers over the repeatable cases until `until`; the `once` cases (huge bodies, stalled clients) are
 * sent side by side at `onceAt`, so that a stalled one never holds up the others.
 */
export async function runFuzzer(opts: FuzzerOptions): Promise<void> {
  const cases = FUZZ_CASES.filter((c) => !opts.skip?.has(c.name));
  const repeated = cases.filter((c) => !c.once);
  let next = 0;
  const worker = async () => {
    while (Date.now() < opts.until) {
      opts.onOutcome(await send(opts.url, repeated[next++ % repeated.length]!, opts.deadlineMs));
      await new Promise((r) => setTimeout(r, opts.gapMs));
    }
  };
  const once = async () => {
    await new Promise((r) => setTimeout(r, Math.max(0, opts.onceAt - Date.now())));
    await Promise.all(
      cases.filter((c) => c.once).map(async (c) => opts.onOutcome(await send(opts.url, c, opts.deadlineMs))),
    );
  };
  await Promise.all([once(), ...Array.from({ length: opts.workers }, worker)]);
}

/** One fuzz request on a fresh connection. */
export function send(base: string, c: FuzzCase, deadlineMs: number): Promise<FuzzOutcome> {
  return c.raw ? sendRaw(base, c, c.raw(), deadlineMs) : sendHttp(base, c, deadlineMs);
}

function sendHttp(base: string, c: FuzzCase, deadlineMs: number): Promise<FuzzOutcome> {
  const { hostname, port } = new URL(base);
  const body = c.body?.();
  const startedAt = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    let status: number | undefined;
    const finish = (result: FuzzOutcome['status'], envelope = true) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ name: c.name, status: result, startedAt, endedAt: Date.now(), envelope });
    };
    const headers: Record<string, string> = { ...c.headers };
    if (body) headers['content-length'] = String(body.length);
    const req = http.request({ host: hostname, port, method: c.method, path: c.path, headers, agent: false });
    const timer = setTimeout(() => finish('lost'), deadlineMs);
    // A server that refuses a body early (413) may close while the body is still being written: its status counts.
    req.on('error', () => finish(status ?? 'connection'));
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', () => finish(status ?? 'connection'));
      res.on('end', () => finish(status!, status! < 400 || hasEnvelope(Buffer.concat(chunks))));
    });
    if (c.stallAfterBytes !== undefined && body) req.write(body.subarray(0, c.stallAfterBytes));
    else req.end(body);
  });
}

/** Raw bytes on a socket; the answer is read until it is complete, the server closes, or the deadline. */
function sendRaw(base: string, c: FuzzCase, bytes: Buffer, deadlineMs: number): Promise<FuzzOutcome> {
  const { hostname, port } = new URL(base);
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const answer = parseAnswer(Buffer.concat(chunks).toString('latin1'));
      const status = answer?.status ?? (timedOut ? 'lost' : 'connection');
      const envelope = !answer || answer.status < 400 || hasEnvelope(Buffer.from(answer.body, 'latin1'));
      resolve({ name: c.name, status, startedAt, endedAt: Date.now(), envelope });
    };
    const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write(bytes));
    const timer = setTimeout(() => finish(true), deadlineMs);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (parseAnswer(Buffer.concat(chunks).toString('latin1'))?.complete) finish(false);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

/** Status and body of a raw HTTP answer; complete once Content-Length bytes of body are there. */
function parseAnswer(text: string): { status: number; body: string; complete: boolean } | undefined {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  const headEnd = text.indexOf('\r\n\r\n');
  if (!m || headEnd < 0) return undefined;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, headEnd));
  const body = text.slice(headEnd + 4);
  return { status: Number(m[1]), body, complete: length !== null && body.length >= Number(length[1]) };
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
