/**
 * A transparent HTTP forwarder put between the proxy and a simulator: it records every request the proxy sends
 * upstream (method, path, parsed JSON body) and can hold chosen requests until the test releases them, which
 * turns "while X is in flight" into a deterministic state instead of a race.
 */
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as it reached the tap. */
export interface TapRequest {
  method: string;
  /** Path with query, e.g. `/slots/0?action=restore`. */
  path: string;
  /** Parsed JSON body, the raw text when it was not JSON, undefined when empty. */
  body: any;
  /** The request headers as received (lower-case names). */
  headers: IncomingMessage['headers'];
}

/** A hold on the first request that matches: it is forwarded only after `release()`. */
export interface Hold {
  /** Resolves when the matching request has arrived (and is being held). */
  arrived: Promise<TapRequest>;
  release(): void;
}

export interface Tap {
  readonly url: string;
  readonly requests: TapRequest[];
  /** Hold the next request matching `match` (the first one not caught by an earlier hold). */
  hold(match: (r: TapRequest) => boolean): Hold;
  /**
   * Forward the next request matching `match` at once, but hold its whole answer: `arrived` resolves when the
   * upstream answer is complete (the server has finished), the proxy gets it only after `release()`.
   */
  holdAnswer(match: (r: TapRequest) => boolean): Hold;
  close(): Promise<void>;
}

interface PendingHold {
  match: (r: TapRequest) => boolean;
  caught: boolean;
  onArrive: (r: TapRequest) => void;
  released: Promise<void>;
  release: () => void;
}

/** Start a tap on loopback in front of `targetUrl`. */
export async function startTap(targetUrl: string): Promise<Tap> {
  const target = new URL(targetUrl);
  const requests: TapRequest[] = [];
  const holds: PendingHold[] = [];
  const answerHolds: PendingHold[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const entry: TapRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      body: parseBody(raw),
      headers: req.headers,
    };
    requests.push(entry);
    const hold = holds.find((h) => !h.caught && h.match(entry));
    if (hold) {
      hold.caught = true;
      hold.onArrive(entry);
      await hold.released;
    }
    const answerHold = answerHolds.find((h) => !h.caught && h.match(entry));
    if (answerHold) answerHold.caught = true;
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
        agent: false,
      },
      (up) => {
        if (!answerHold) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const body: Buffer[] = [];
        up.on('data', (chunk: Buffer) => body.push(chunk));
        up.on('end', () => {
          answerHold.onArrive(entry);
          void answerHold.released.then(() => res.writeHead(up.statusCode ?? 502, up.headers).end(Buffer.concat(body)));
        });
      },
    );
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.on('error', () => {
      if (!res.headersSent)
        res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":{"message":"tap: upstream failed"}}');
      else res.destroy();
    });
    upstream.end(raw);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    hold: (match) => addHold(holds, match),
    holdAnswer: (match) => addHold(answerHolds, match),
    /** Releases every hold (so nothing waits on the tap any more), then drops all connections. */
    async close() {
      for (const h of [...holds, ...answerHolds]) h.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Register a hold on the first request matching `match` in `list`; the test gets its arrival and its release. */
function addHold(list: PendingHold[], match: (r: TapRequest) => boolean): Hold {
  let release!: () => void;
  let onArrive!: (r: TapRequest) => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const arrived = new Promise<TapRequest>((resolve) => (onArrive = resolve));
  list.push({ match, caught: false, onArrive, released, release });
  return { arrived, release };
}

function parseBody(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
