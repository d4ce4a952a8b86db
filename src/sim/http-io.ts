/**
 * Writing answers the way llama-server writes them: its headers, its error envelope, its SSE framing, and the
 * nlohmann::json exception texts it returns when a body does not parse.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** A request after the front has read its body; `path` may already be rewritten (llama-swap `/upstream`). */
export interface SimRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  socket: Socket;
}

/** One request/response pair as the handlers see it. */
export interface Exchange {
  req: SimRequest;
  res: ServerResponse;
  /**
   * True when the client talks to a llama.cpp HTTP server (llama-server or router): `Keep-Alive` is advertised
   * and the connection is dropped after a stream. False behind llama-swap, whose Go proxy strips hop-by-hop
   * headers and keeps its own client connections alive.
   */
  llamaConnection: boolean;
  /** Tells the front a streamed answer ended, so it can apply its connection policy. */
  onStreamEnd(): void;
  /**
   * Has the front close the connection once this answer is sent, whatever it is: the router does so after every
   * answer it relays from a model's server, and says so (`Connection: close`) only on some of them.
   */
  closeAfterAnswer(): void;
}

/** The `type` llama-server puts in its error envelope for each status. */
export function errorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 501:
      return 'not_supported_error';
    case 503:
      return 'unavailable_error';
    default:
      return status >= 500 ? 'server_error' : 'invalid_request_error';
  }
}

/** llama-server's error body: `{"error":{"code","message","type"}}` (this key order). */
export function errorBody(
  status: number,
  message: string,
  type = errorType(status),
): { error: Record<string, unknown> } {
  return { error: { code: status, message, type } };
}

// Headers in the order the captures show them.
function baseHeaders(ex: Exchange, contentType: string, sse = false): void {
  const res = ex.res;
  // httplib sends no Date header; Go (llama-swap) does.
  res.sendDate = !ex.llamaConnection;
  res.setHeader('Server', 'llama.cpp');
  res.setHeader('Access-Control-Allow-Origin', '');
  if (sse) res.setHeader('X-Accel-Buffering', 'no');
  res.setHeader('Content-Type', contentType);
}

/** Sends a JSON answer with llama-server's headers. */
export function sendJson(ex: Exchange, status: number, body: unknown): void {
  if (ex.res.headersSent || ex.res.destroyed) return;
  const text = JSON.stringify(body);
  baseHeaders(ex, 'application/json; charset=utf-8');
  ex.res.setHeader('Content-Length', Buffer.byteLength(text));
  if (ex.llamaConnection) ex.res.setHeader('Keep-Alive', 'timeout=5, max=100');
  ex.res.statusCode = status;
  ex.res.end(text);
}

/** Sends `{"error":{"code","message","type"}}` with `status`. */
export function sendError(ex: Exchange, status: number, message: string, type?: string): void {
  sendJson(ex, status, errorBody(status, message, type));
}

/** llama-server's answer to an unknown path (note its different key order). */
export function sendNotFound(ex: Exchange): void {
  sendJson(ex, 404, { error: { message: 'File Not Found', type: 'not_found_error', code: 404 } });
}

/** Starts an SSE answer with the headers of `chat_stream.txt`. */
export function startSse(ex: Exchange): void {
  baseHeaders(ex, 'text/event-stream', true);
  if (ex.llamaConnection) ex.res.setHeader('Keep-Alive', 'timeout=5, max=100');
  ex.res.statusCode = 200;
  ex.res.flushHeaders();
}

/** Writes one `data: …\n\n` event; false when the client is gone. */
export function writeSse(ex: Exchange, data: unknown): boolean {
  if (ex.res.destroyed || ex.res.writableEnded) return false;
  ex.res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  return true;
}

/** Writes one `event: …\ndata: …\n\n` event (the Anthropic stream); false when the client is gone. */
export function writeSseEvent(ex: Exchange, event: string, data: unknown): boolean {
  if (ex.res.destroyed || ex.res.writableEnded) return false;
  ex.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  return true;
}

/** Ends an SSE answer and hands the connection to the front's policy. */
export function endSse(ex: Exchange): void {
  if (ex.res.destroyed || ex.res.writableEnded) return;
  ex.res.end();
  ex.onStreamEnd();
}

/** The outcome of parsing a body like nlohmann::json::parse would. */
export type JsonParse = { ok: true; value: unknown } | { ok: false; message: string };

const EMPTY_INPUT =
  '[json.exception.parse_error.101] parse error at line 1, column 1: attempting to parse an empty input; check that your input string or stream contains the expected JSON';

/** Parses a body, producing nlohmann::json's exception text on failure (llama-server returns that text). */
export function parseJsonBody(body: Buffer): JsonParse {
  const text = body.toString('utf8');
  if (text.trim() === '') return { ok: false, message: EMPTY_INPUT };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    const m = /position (\d+)/.exec(String((err as Error).message));
    const pos = m ? Number(m[1]) : text.length - 1;
    const before = text.slice(0, pos + 1);
    const line = before.split('\n').length;
    const column = pos + 1 - (before.lastIndexOf('\n') + 1) + 1;
    const lastRead = before.slice(-20);
    return {
      ok: false,
      message: `[json.exception.parse_error.101] parse error at line ${line}, column ${column}: syntax error while parsing value - invalid literal; last read: '${lastRead}'`,
    };
  }
}

/** nlohmann's text for `json.at(key)` on a missing key. */
export function missingKeyMessage(key: string): string {
  return `[json.exception.out_of_range.403] key '${key}' not found`;
}

/** nlohmann's text for reading a value of another JSON type as a `want` (a string by default). */
export function wrongTypeMessage(value: unknown, want: 'string' | 'number' | 'boolean' | 'array' = 'string'): string {
  const kind =
    value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'object' ? 'object' : typeof value;
  return `[json.exception.type_error.302] type must be ${want}, but is ${kind}`;
}

/** True for a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
