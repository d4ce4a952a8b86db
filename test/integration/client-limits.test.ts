/**
 * Resource exhaustion by a client: a body trickled byte by byte used to hold its socket forever, and bodies of up
 * to 256 MiB were buffered and parsed. Now headers and body have deadlines (408) and bodies a size limit (413),
 * both answered in the OpenAI error shape.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { withDeadline } from '../support/deadline.js';
import { eventsOf } from '../support/sim-helpers.js';
import { postJson, startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

/**
 * Open a raw connection, write `head`, then one byte of filler every `everyMs` until the server closes the
 * connection (or `deadlineMs` passes: then the connection is dropped and the promise rejects). Resolves with what the
 * server sent and how long after the first byte it closed the connection.
 */
function trickle(
  base: string,
  head: string,
  everyMs: number,
  deadlineMs: number,
): Promise<{ answer: string; ms: number }> {
  const { hostname, port } = new URL(base);
  let socket!: net.Socket;
  const closed = new Promise<{ answer: string; ms: number }>((resolve) => {
    socket = net.connect(Number(port), hostname);
    let answer = '';
    let timer: NodeJS.Timeout | undefined;
    const started = performance.now();
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => socket.write('x'), everyMs);
    });
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, ms: performance.now() - started });
    });
  });
  return withDeadline(closed, deadlineMs, 'the proxy to close the trickling connection').catch((err: unknown) => {
    socket.destroy();
    throw err;
  });
}

function parseAnswer(answer: string): { status: number; body: any } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
  const text = answer.slice(answer.indexOf('\r\n\r\n') + 4);
  return { status, body: text ? JSON.parse(text) : undefined };
}

describe('client limits', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { MAX_BODY_MB: '1', CLIENT_HEADERS_TIMEOUT: '1', CLIENT_BODY_TIMEOUT: '1' } });
  });
  after(() => closeStack(stack));

  it('a body trickled one byte every 100 ms is cut off with 408 once headers + body time is up', async () => {
    const chats = eventsOf(stack.sim, 'chat').length;
    const head =
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{';
    const { answer, ms } = await trickle(stack.url, head, 100, 6000);
    const { status, body } = parseAnswer(answer);
    assert.equal(status, 408, answer);
    assert.equal(body.error.code, 'request_timeout');
    assert.equal(body.error.type, 'invalid_request_error');
    // CLIENT_HEADERS_TIMEOUT + CLIENT_BODY_TIMEOUT = 2 s, checked every 250 ms.
    assert.ok(ms >= 1900 && ms < 3500, `closed after ${Math.round(ms)} ms`);
    assert.equal(eventsOf(stack.sim, 'chat').length, chats, 'nothing reached the backend');
  });

  it('headers trickled one byte every 100 ms are cut off with 408 after CLIENT_HEADERS_TIMEOUT', async () => {
    const { answer, ms } = await trickle(stack.url, 'POST /v1/chat/completions HTTP/1.1\r\nX-Slow: ', 100, 6000);
    assert.equal(parseAnswer(answer).status, 408, answer);
    assert.ok(ms >= 900 && ms < 2500, `closed after ${Math.round(ms)} ms`);
  });

  it('a body over MAX_BODY_MB gets 413 body_too_large in the OpenAI shape (with Content-Length)', async () => {
    const chats = eventsOf(stack.sim, 'chat').length;
    const big = JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(1024 * 1024 + 1) }] });
    const res = await postJson(stack.url, '/v1/chat/completions', big);
    assert.equal(res.status, 413);
    assert.equal(res.body.error.code, 'body_too_large');
    assert.equal(res.body.error.type, 'invalid_request_error');
    assert.match(res.body.error.message, /MAX_BODY_MB \(1 MB\)/);
    assert.equal(eventsOf(stack.sim, 'chat').length, chats, 'nothing reached the backend');
  });

  it('a chunked body over MAX_BODY_MB gets 413 too, on a passed-through path as well', async () => {
    const chunk = new Uint8Array(256 * 1024).fill(0x20);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 8) controller.close();
        else {
          sent++;
          controller.enqueue(chunk);
        }
      },
    });
    const res = await withDeadline(
      fetch(`${stack.url}/v1/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        duplex: 'half',
      } as RequestInit),
      5000,
      'the 413',
    );
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as any).error.code, 'body_too_large');
  });

  it('a request within the limits still gets its answer', async () => {
    const res = await postJson(stack.url, '/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'y'.repeat(500_000) }],
      max_tokens: 2,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
  });
});
