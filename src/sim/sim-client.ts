/**
 * A minimal raw HTTP client for talking to the simulator from tests, benchmarks and demos: every call has a
 * deadline, answers keep their raw header order, and an Agent can be passed to control connection reuse.
 */
import http from 'node:http';

/** A complete answer. */
export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Header names and values in wire order, as `[name, value, name, value, …]`. */
  rawHeaders: string[];
  body: string;
  /** The body parsed as JSON (throws when it is not JSON). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary answers field by field
  json<T = any>(): T;
}

/** Options of one request. */
export interface RequestOptions {
  method?: string;
  /** A string or Buffer is sent as is; anything else is JSON-encoded. Undefined sends no body. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Connection pool to use; default: a fresh connection that is closed afterwards. */
  agent?: http.Agent | false;
  /** Rejects when the whole answer has not arrived by then (default 10 s). */
  timeoutMs?: number;
  /** Aborts the request (the socket is destroyed). */
  signal?: AbortSignal;
  /** Called with each body chunk as it arrives (for streams). */
  onChunk?: (chunk: string) => void;
}

/** Sends one request to `base + path` and reads the whole answer. */
export function request(base: string, path: string, opts: RequestOptions = {}): Promise<RawResponse> {
  const url = new URL(path, base);
  const body =
    opts.body === undefined
      ? undefined
      : typeof opts.body === 'string' || Buffer.isBuffer(opts.body)
        ? opts.body
        : JSON.stringify(opts.body);
  const headers: Record<string, string> = { ...opts.headers };
  if (body !== undefined && !('content-type' in headers)) headers['content-type'] = 'application/json';
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise<RawResponse>((resolve, reject) => {
    const req = http.request(url, {
      method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      agent: opts.agent ?? false,
      signal: opts.signal,
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`no complete answer to ${path} within ${opts.timeoutMs ?? 10000} ms`)),
      opts.timeoutMs ?? 10000,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        opts.onChunk?.(c);
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: text,
          json: () => JSON.parse(text),
        });
      });
    });
    req.end(body);
  });
}

/** POSTs a JSON body. */
export function postJson(base: string, path: string, body: unknown, opts: RequestOptions = {}): Promise<RawResponse> {
  return request(base, path, { ...opts, method: 'POST', body });
}

/** The `data:` payloads of an SSE body, in order (`[DONE]` included as a string). */
export function sseData(body: string): string[] {
  return body
    .split('\n\n')
    .filter((frame) => frame.startsWith('data: '))
    .map((frame) => frame.slice('data: '.length));
}

/** A chat body with one user message. */
export function chatBody(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { messages: [{ role: 'user', content }], ...extra };
}
