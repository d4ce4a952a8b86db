/**
 * What a client may cost the proxy: the largest body it may send, and how long it may take to send its headers and
 * its body. Without these, a body trickled one byte at a time holds a socket forever, and a huge body is buffered and
 * parsed on the event loop while every other request waits. Also renders the errors Node raises on a client's
 * connection itself (timeouts, oversized or malformed headers) in the OpenAI error shape.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';

export interface ClientLimits {
  /** MAX_BODY_MB */
  maxBodyMb: number;
  /** CLIENT_HEADERS_TIMEOUT, seconds */
  clientHeadersTimeout: number;
  /** CLIENT_BODY_TIMEOUT, seconds */
  clientBodyTimeout: number;
}

/** Fastify and Node http server options enforcing the limits. */
export function serverOptions(limits: ClientLimits) {
  const headersTimeout = Math.round(limits.clientHeadersTimeout * 1000);
  // Node measures the request timeout from the start of the request, so the body's time comes after the headers'.
  const requestTimeout = headersTimeout + Math.round(limits.clientBodyTimeout * 1000);
  return {
    bodyLimit: Math.floor(limits.maxBodyMb * 1024 * 1024),
    requestTimeout,
    http: {
      headersTimeout,
      // Node checks the timeouts only this often (30 s by default, which would stretch a short timeout a lot).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
  };
}

/**
 * The `clientError` handler: Node found a problem with a connection before (or while) a request was read. Answer
 * in the OpenAI error shape when the socket can still take it, then close the connection.
 */
export function clientErrorHandler(log: Logger) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const error = clientError(err);
    log.info({ status: error.status, code: error.code, cause: err.code ?? err.message }, 'client connection error');
    if (socket.writable) {
      const body = JSON.stringify(error.toJSON());
      socket.write(
        `HTTP/1.1 ${error.status} ${STATUS_TEXT[error.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

function clientError(err: Error & { code?: string }): ProxyError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new ProxyError(
      408,
      'request_timeout',
      'the request was not received in time (CLIENT_HEADERS_TIMEOUT for the headers, CLIENT_BODY_TIMEOUT for the body)',
    );
  }
  if (err.code === 'HPE_HEADER_OVERFLOW')
    return new ProxyError(431, 'headers_too_large', 'the request headers are too large');
  return new ProxyError(400, 'bad_request', 'malformed HTTP request');
}
