/**
 * Sends one pinned generation request to the backend and answers the client: JSON answers whole, SSE streams chunk
 * by chunk as they arrive, backend error statuses with their body; each either as it came or converted by the
 * adapter's `AnswerConversion`. The backend's own bytes are read on the side for llama.cpp's `timings`.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { BackendCall, LlamaClient, UpstreamResponse } from '../backend/llama-client.js';
import { describeCause } from '../errors.js';
import type { AnswerConversion, StreamConversion } from './adapter.js';
import { readAnswer, SseTap } from './sse-tap.js';
import type { Timings } from './sse-tap.js';
import type { AnswerShape } from './answer-text.js';

export interface ForwardOutcome {
  status: number;
  /** The whole answer reached the client. */
  completed: boolean;
  /** The client went away before the answer was complete. */
  clientGone: boolean;
  timings?: Timings;
  /** The answer's text, when asked for (`collectReply`) and when that is all it answered. */
  reply?: string;
}

/** What to forward and how to answer. */
export interface Forwarding {
  call: BackendCall;
  /** The client asked for SSE. */
  stream: boolean;
  answer?: AnswerConversion;
  signal: AbortSignal;
  /** The backend's answer began (for a stream, its prompt was processed). */
  onFirstByte?: () => void;
  /** Read the answer's text, in the shape of the route's answers (see AnswerText). */
  collectReply?: AnswerShape;
}

/** Forward and answer the client. Throws only before anything was sent (the caller renders the error). */
export async function forwardGeneration(
  client: LlamaClient,
  reply: FastifyReply,
  f: Forwarding,
): Promise<ForwardOutcome> {
  const onFirstByte = f.onFirstByte ?? (() => undefined);
  let res: UpstreamResponse;
  try {
    res = await client.generate(f.call.path, f.call.body, { signal: f.signal, stream: f.stream });
  } catch (err) {
    // Nothing was sent yet (a JSON answer comes whole, a stream after its prefill): the client's abort, not a
    // backend failure.
    if (f.signal.aborted) return clientLeft(reply);
    throw err;
  }
  const isSse = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
  const collectReply = f.collectReply;
  if (f.stream && isSse && res.status < 400)
    return relayStream(res, reply, f.signal, onFirstByte, f.answer?.stream(), collectReply);
  return relayWhole(res, reply, f.signal, onFirstByte, f.answer, collectReply);
}

async function relayWhole(
  res: UpstreamResponse,
  reply: FastifyReply,
  signal: AbortSignal,
  onFirstByte: () => void,
  answer: AnswerConversion | undefined,
  collectReply: AnswerShape | undefined,
): Promise<ForwardOutcome> {
  let buffer: Buffer;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) {
      if (chunks.length === 0) onFirstByte();
      chunks.push(chunk as Buffer);
    }
    buffer = Buffer.concat(chunks);
  } catch (err) {
    if (signal.aborted) return clientLeft(reply);
    throw err;
  }
  const contentType = String(res.headers['content-type'] ?? 'application/json; charset=utf-8');
  const out = answer
    ? answer.whole({ status: res.status, body: buffer, contentType })
    : { status: res.status, body: buffer, contentType };
  await reply.code(out.status).header('content-type', out.contentType).send(out.body);
  const read = readAnswer(buffer, res.status < 400 ? collectReply : undefined);
  return { status: res.status, completed: true, clientGone: false, ...read };
}

async function relayStream(
  res: UpstreamResponse,
  reply: FastifyReply,
  signal: AbortSignal,
  onFirstByte: () => void,
  convert: StreamConversion | undefined,
  collectReply: AnswerShape | undefined,
): Promise<ForwardOutcome> {
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(res.status, {
    'content-type': convert?.contentType ?? String(res.headers['content-type']),
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  raw.flushHeaders();
  const tap = new SseTap({ reply: collectReply });
  try {
    await relayChunks(res.body, raw, tap, onFirstByte, convert);
  } catch (err) {
    if (signal.aborted) {
      raw.destroy();
      return { status: res.status, completed: false, clientGone: true, timings: tap.timings };
    }
    // Headers are out: end the stream with an error event the way llama-server does, never a second status.
    const message = `backend stream broke: ${describeCause(err)}`;
    raw.end(
      convert
        ? convert.error(message)
        : `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code: 'backend_stream_error' } })}\n\n`,
    );
    return { status: 502, completed: false, clientGone: false, timings: tap.timings };
  }
  raw.end(convert?.end() ?? '');
  const completed = tap.error === undefined;
  const text = completed ? tap.reply : undefined;
  return {
    status: res.status,
    completed,
    clientGone: false,
    timings: tap.timings,
    ...(text !== undefined && { reply: text }),
  };
}

/**
 * Copy (or convert) every chunk to the client as it arrives (event-driven: an async iterator costs a promise per
 * token chunk), pausing the backend while the client's socket is full. Rejects when the backend stream fails or is
 * aborted.
 */
function relayChunks(
  body: Readable,
  raw: ServerResponse,
  tap: SseTap,
  onFirstByte: () => void,
  convert: StreamConversion | undefined,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = () => body.resume();
    body.once('data', onFirstByte);
    body.on('data', (chunk: Buffer) => {
      tap.push(chunk);
      const out = convert ? convert.push(chunk) : chunk;
      if (out.length > 0 && !raw.write(out)) {
        body.pause();
        raw.once('drain', onDrain);
      }
    });
    body.once('end', () => {
      raw.off('drain', onDrain);
      resolve();
    });
    body.once('error', (err) => {
      raw.off('drain', onDrain);
      reject(err);
    });
  });
}

/**
 * nginx's "client closed request": the status logged for a client that left before any of the answer reached it. A
 * stream cut after its first bytes keeps the backend's status (the client saw it), with `clientGone`.
 */
export const CLIENT_CLOSED_REQUEST = 499;

/** Nobody to answer: end the exchange without a reply. */
function clientLeft(reply: FastifyReply): ForwardOutcome {
  reply.hijack();
  reply.raw.destroy();
  return { status: CLIENT_CLOSED_REQUEST, completed: false, clientGone: true };
}
