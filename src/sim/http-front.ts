/**
 * The listening socket of a simulator: a bare `node:http` server that reads each body, builds an Exchange and
 * hands it to the mode's router. It owns the connection policy that reproduces llama-server's quirk: the TCP
 * connection is dropped after every streamed answer (and, in router mode, after every answer relayed from a
 * model's server) although keep-alive is advertised, so a pooled client that sends its next request on that
 * connection gets no answer ("Server disconnected without sending a response").
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { errorBody, sendJson, type Exchange, type SimRequest } from './http-io.js';

/**
 * How long after a stream the socket is closed; a request arriving before that is dropped unanswered. (The real
 * router's close came 1 to 3 ms after its answer: wider here, so that a client reusing the connection fails every
 * time, not once in a while.)
 */
export const CLOSE_AFTER_STREAM_MS = 20;

/** Options of one listening front. */
export interface FrontOptions {
  host: string;
  port: number;
  /** See Exchange.llamaConnection. */
  llamaConnection: boolean;
  /** Handles one exchange; a throw becomes a 500 in llama-server's error shape. */
  handle(ex: Exchange): Promise<void> | void;
}

/** A running front. */
export interface HttpFront {
  readonly url: string;
  readonly port: number;
  /** Drops every open connection at once (a process restart or crash, as clients see it). */
  dropConnections(): void;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/** Starts listening; resolves once the port is bound. */
export async function startHttpFront(opts: FrontOptions): Promise<HttpFront> {
  const doomed = new WeakSet<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const closeSoon = (socket: Socket): void => {
    if (doomed.has(socket)) return;
    doomed.add(socket);
    const timer = setTimeout(() => {
      timers.delete(timer);
      socket.end();
    }, CLOSE_AFTER_STREAM_MS);
    timers.add(timer);
  };

  const server = http.createServer((incoming, res) => {
    const socket = incoming.socket;
    if (doomed.has(socket)) {
      // The real server has already decided to close this connection: the request is never answered.
      socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    incoming.on('data', (c: Buffer) => chunks.push(c));
    incoming.on('error', () => undefined);
    incoming.on('end', () => {
      const url = new URL(incoming.url ?? '/', 'http://sim');
      const req: SimRequest = {
        method: incoming.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: incoming.headers,
        body: Buffer.concat(chunks),
        socket,
      };
      const ex: Exchange = {
        req,
        res,
        llamaConnection: opts.llamaConnection,
        onStreamEnd: () => {
          if (opts.llamaConnection) closeSoon(socket);
        },
        closeAfterAnswer: () => {
          res.once('finish', () => closeSoon(socket));
        },
      };
      Promise.resolve()
        .then(() => opts.handle(ex))
        .catch((err: unknown) => {
          if (!res.headersSent) sendJson(ex, 500, errorBody(500, err instanceof Error ? err.message : String(err)));
          else res.destroy();
        });
    });
  });
  // httplib keeps idle connections 5 s (and says so in its own header); Go's server has no idle timeout and
  // sends no Keep-Alive header, which Node also omits when the timeout is 0.
  server.keepAliveTimeout = opts.llamaConnection ? 5000 : 0;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;

  return {
    url: `http://${host}:${port}`,
    port,
    dropConnections: () => server.closeAllConnections(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
