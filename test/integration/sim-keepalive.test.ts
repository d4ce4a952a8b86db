/**
 * probe_keepalive.txt: llama-server advertises keep-alive but closes the connection after every streamed reply,
 * so a pooled client that sends its next request on that connection gets no answer. llama-swap does not. The
 * router closes it after every answer it relays from a model's server, streamed or not (test-real/server-facts).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { chatBody, postJson, request } from '../../src/sim/sim-client.js';

const streamBody = (model?: string) =>
  chatBody('stream then save', { stream: true, max_tokens: 2, ...(model ? { model } : {}) });

describe('sim connection handling after a stream (llama-server)', () => {
  let sim: SimHandle;
  before(async () => {
    sim = await startSimulator({ mode: 'llama-server', models: [{ id: 'm' }], cost: { timeScale: 0 } });
  });
  after(() => sim.close());

  it('drops a request sent on the connection that carried a stream', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const stream = await postJson(sim.url, '/v1/chat/completions', streamBody(), { agent });
      assert.equal(stream.status, 200);
      assert.equal(stream.headers['keep-alive'], 'timeout=5, max=100');
      await assert.rejects(request(sim.url, '/slots', { agent }), (err: NodeJS.ErrnoException) => {
        assert.ok(['ECONNRESET', 'EPIPE'].includes(err.code ?? '') || /socket hang up/.test(err.message), err.message);
        return true;
      });
      // A fresh connection works.
      assert.equal((await request(sim.url, '/slots', { agent })).status, 200);
    } finally {
      agent.destroy();
    }
  });

  it('keeps the connection open after non-streamed answers', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal(
          (await postJson(sim.url, '/v1/chat/completions', chatBody('x', { max_tokens: 1 }), { agent })).status,
          200,
        );
      }
    } finally {
      agent.destroy();
    }
  });

  it('closes the connection by itself shortly after the stream', async () => {
    const { port } = new URL(sim.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    const body = JSON.stringify(streamBody());
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    let received = '';
    socket.on('data', (d) => (received += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server kept the connection open')), 3000);
      socket.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('error', reject);
    });
    socket.destroy();
    assert.match(received, /data: \[DONE\]\r?\n\r?\n/);
  });
});

describe('sim connection handling in router mode', () => {
  let sim: SimHandle;
  before(async () => {
    sim = await startSimulator({ mode: 'router', models: [{ id: 'a' }], cost: { timeScale: 0 } });
  });
  after(() => sim.close());

  it("drops a request sent on the connection that carried a model's answer, a GET's too", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const relayed = await request(sim.url, '/props?model=a', { agent });
      assert.equal(relayed.status, 200);
      assert.equal(relayed.headers['keep-alive'], 'timeout=5, max=100', 'keep-alive is advertised all the same');
      assert.equal(relayed.headers.connection, 'keep-alive');
      await assert.rejects(request(sim.url, '/models', { agent }), (err: NodeJS.ErrnoException) => {
        assert.ok(['ECONNRESET', 'EPIPE'].includes(err.code ?? '') || /socket hang up/.test(err.message), err.message);
        return true;
      });
      const chat = await postJson(sim.url, '/v1/chat/completions', chatBody('x', { model: 'a', max_tokens: 1 }), {
        agent,
      });
      assert.equal(chat.status, 200);
      await assert.rejects(request(sim.url, '/models', { agent }));
    } finally {
      agent.destroy();
    }
  });

  it('keeps the connection open after its own answers', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const path of ['/models', '/props', '/health', '/v1/models', '/slots?model=zzz'])
        assert.ok((await request(sim.url, path, { agent })).status < 500, path);
    } finally {
      agent.destroy();
    }
  });
});

describe('sim connection handling behind llama-swap', () => {
  it('keeps the client connection usable after a stream', async () => {
    const sim = await startSimulator({ mode: 'llama-swap', models: [{ id: 'a' }], cost: { timeScale: 0 } });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const stream = await postJson(sim.url, '/v1/chat/completions', streamBody('a'), { agent });
      assert.equal(stream.status, 200);
      assert.equal(stream.headers['keep-alive'], undefined);
      assert.equal((await postJson(sim.url, '/upstream/a/slots/0?action=erase', {}, { agent })).status, 501);
    } finally {
      agent.destroy();
      await sim.close();
    }
  });
});
