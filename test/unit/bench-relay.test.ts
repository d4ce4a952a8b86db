/**
 * The real bench's bare relay (`relay-8g`): a child process that passes requests and answers through unchanged, a
 * stream chunk by chunk as it comes, and stops when told. Driven over loopback HTTP against a stub server.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startRelayProcess } from '../../bench/relay.js';
import type { RelayProcess } from '../../bench/relay.js';

describe('bench relay', () => {
  const seen: Array<{ method: string; url: string; body: string; type: string | undefined }> = [];
  let releaseLast!: () => void;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body, type: req.headers['content-type'] });
      res.writeHead(201, { 'content-type': 'text/event-stream', 'x-from': 'stub' });
      res.write('data: {"n":1}\n\n');
      // The last event only once the client has seen the first: the relay must not hold a stream back.
      releaseLast = () => res.end('data: [DONE]\n\n');
    });
  });
  let relay: RelayProcess;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    relay = await startRelayProcess(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(async () => {
    await relay.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('passes the request and the streamed answer through as they are, each chunk as it comes', async () => {
    const res = await request(`${relay.url}/v1/chat/completions?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"messages":[]}',
    });
    assert.equal(res.statusCode, 201);
    assert.equal(res.headers['x-from'], 'stub');
    assert.equal(res.headers['content-type'], 'text/event-stream');
    const chunks: string[] = [];
    for await (const chunk of res.body) {
      chunks.push((chunk as Buffer).toString('utf8'));
      if (chunks.length === 1) releaseLast();
    }
    assert.equal(chunks.join(''), 'data: {"n":1}\n\n' + 'data: [DONE]\n\n');
    assert.equal(chunks[0], 'data: {"n":1}\n\n', 'the first event arrived before the stub sent the last');
    assert.deepEqual(seen, [
      { method: 'POST', url: '/v1/chat/completions?x=1', body: '{"messages":[]}', type: 'application/json' },
    ]);
  });

  it('stops when told, and no longer listens', async () => {
    const url = relay.url;
    await relay.stop();
    await assert.rejects(request(url), /ECONNREFUSED/);
  });
});
