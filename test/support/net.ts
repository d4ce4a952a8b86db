/** Raw network helpers for tests that need control the SDK hides: a port nobody listens on, a stream to cut. */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { withDeadline } from './deadline.js';

/** A loopback port that was free a moment ago (for a server that must be told its port, like llama-server). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `http://127.0.0.1:PORT` where PORT was free a moment ago and nothing listens now (connections are refused). */
export async function closedPortUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

export interface OpenStream {
  status: number;
  /** The body received so far (at least one chunk). */
  received: string;
  /** Cut the connection (what a client does when the user presses stop or closes the tab). */
  destroy(): void;
}

/**
 * POST `body` on a fresh connection (no agent, no pooling) and resolve once the first body chunk has arrived;
 * the request stays open until `destroy()`.
 */
export function openStream(base: string, path: string, body: unknown, ms = 3000): Promise<OpenStream> {
  const text = JSON.stringify(body);
  const req = http.request(new URL(path, base), {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) },
  });
  const first = new Promise<OpenStream>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let received = '';
      res.setEncoding('utf8');
      res.on('error', () => undefined);
      res.on('data', (chunk: string) => {
        received += chunk;
        resolve({ status: res.statusCode ?? 0, received, destroy: () => req.destroy() });
      });
    });
  });
  req.end(text);
  return withDeadline(first, ms, `the first chunk of ${path}`).catch((err: unknown) => {
    req.destroy();
    throw err;
  });
}
