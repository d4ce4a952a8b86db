/**
 * Sends one chat completion to the backend and relays the answer to the client: JSON answers as they came,
 * SSE streams byte for byte as they arrive, backend error statuses with their body. A tee'd view of the answer
 * yields llama.cpp's `timings` for the proxy's own bookkeeping.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { LlamaClient, UpstreamResponse } from '../backend/llama-client.js';
import { describeCause } from '../errors.js';
import type { AnswerConversion, StreamConversion } from '../generation/adapter.js';
import { SseTap } from './sse-tap.js';
import type { Timings } from './sse-tap.js';

export interface ForwardOutcome {
  status: number;
  /** The whole answer reached the client. */
  completed: boolean;
  /** The client went away before the answer was complete. */
  clientGone: boolean;
  timings?: Timings;
}

/**
 * Forward the serialised request `payload` (`stream`: it asks for SSE) and answer the client. `onFirstByte`: the
 * backend's answer began (for a stream, its prompt was processed). `conversion`: how the client's API differs from
 * the backend's chat answer (absent: relayed as it came). Throws only before anything was sent (the caller renders
 * the error).
 */
export async function forwardChat(
  client: LlamaClient,
  payload: Buffer | string,
  stream: boolean,
  reply: FastifyReply,
  signal: AbortSignal,
  onFirstByte: () => void = () => undefined,
  conversion?: AnswerConversion,
): Promise<ForwardOutcome> {
  let res: UpstreamResponse;
  try {
    res = await client.chat(payload, { signal, stream });
  } catch (err) {
    // Nothing was sent yet (a JSON answer comes whole, a stream after its prefill): the client's abort, not a
    // backend failure.
    if (signal.aborted) return clientLeft(reply);
    throw err;
  }
  const isSse = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
  if (stream && isSse && res.status < 400) return relayStream(res, reply, signal, onFirstByte, conversion?.stream());
  return relayWhole(res, reply, signal, onFirstByte, conversion);
}

async function relayWhole(
  res: UpstreamResponse,
  reply: FastifyReply,
  signal: AbortSignal,
  onFirstByte: () => void,
  conversion: AnswerConversion | undefined,
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
  const answer = conversion ? conversion.whole({ status: res.status, body: buffer, contentType }) : { status: res.status, body: buffer, contentType };
  await reply.code(answer.status).header('content-type', answer.contentType).send(answer.body);
  return { status: answer.status, completed: true, clientGone: false, timings: timingsOf(buffer) };
}

async function relayStream(
  res: UpstreamResponse,
  reply: FastifyReply,
  signal: AbortSignal,
  onFirstByte: () => void,
  conversion: StreamConversion | undefined,
): Promise<ForwardOutcome> {
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(res.status, {
    'content-type': conversion?.contentType ?? String(res.headers['content-type']),
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  raw.flushHeaders();
  const tap = new SseTap();
  try {
    await relayChunks(res.body, raw, tap, onFirstByte, conversion);
  } catch (err) {
    if (signal.aborted) {
      raw.destroy();
      return { status: res.status, completed: false, clientGone: true, timings: tap.timings };
    }
    // Headers are out: end the stream with an error event the way llama-server does, never a second status.
    const message = `backend stream broke: ${describeCause(err)}`;
    raw.end(conversion
      ? conversion.error(message)
      : `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code: 'backend_stream_error' } })}\n\n`);
    return { status: 502, completed: false, clientGone: false, timings: tap.timings };
  }
  raw.end(conversion?.end() ?? '');
  return { status: res.status, completed: tap.error === undefined, clientGone: false, timings: tap.timings };
}

/**
 * Copy every chunk to the client as it arrives (event-driven: an async iterator costs a promise per token chunk),
 * pausing the backend while the client's socket is full. Rejects when the backend stream fails or is aborted.
 */
function relayChunks(body: Readable, raw: ServerResponse, tap: SseTap, onFirstByte: () => void, conversion?: StreamConversion): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = () => body.resume();
    body.once('data', onFirstByte);
    body.on('data', (chunk: Buffer) => {
      tap.push(chunk);
      const out = conversion ? conversion.push(chunk) : chunk;
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

function timingsOf(buffer: Buffer): Timings | undefined {
  try {
    const parsed = JSON.parse(buffer.toString('utf8')) as { timings?: Timings };
    return parsed.timings;
  } catch {
    return undefined;
  }
}
