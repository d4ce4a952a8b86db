/**
 * The bench driver's think time (`--think-ms`): each client pauses after every answer before its next request, and
 * sends back to back without it. Driven over loopback HTTP against a stub server that records when each request
 * arrived and when its answer ended.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runWorkload } from '../../bench/driver.js';
import type { Workload } from '../../bench/workloads.js';

describe('bench driver: think time', () => {
  const events: Array<{ arrived: number; ended: number }> = [];
  const server = createServer((req, res) => {
    const arrived = performance.now();
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify({ choices: [{ delta: { content: 'ok' } }] })}\n\n`, () =>
        events.push({ arrived, ended: performance.now() }),
      );
    });
  });
  let url = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const workload = (thinkMs?: number): Workload => ({
    name: 'think-test',
    description: 'three turns of one conversation, one client',
    mode: 'llama-server',
    models: ['m'],
    slotsPerModel: 1,
    conversations: [{ id: 'c0', model: 'm', startWords: 50, turnWords: 5 }],
    jobs: [0, 1, 2].map((turn) => ({ kind: 'turn' as const, conversation: 'c0', turn })),
    concurrency: 1,
    maxTokens: 4,
    ...(thinkMs !== undefined && { thinkMs }),
  });
  const gapsAfterAnswers = () => events.slice(1).map((e, i) => e.arrived - events[i]!.ended);

  it('pauses a client for its think time after every answer', async () => {
    events.length = 0;
    await runWorkload(workload(150), { url });
    assert.equal(events.length, 3);
    for (const gap of gapsAfterAnswers()) assert.ok(gap >= 145, `next request ${gap.toFixed(1)} ms after the answer`);
  });

  it('sends the next request at once without one', async () => {
    events.length = 0;
    await runWorkload(workload(), { url });
    for (const gap of gapsAfterAnswers()) assert.ok(gap < 100, `next request ${gap.toFixed(1)} ms after the answer`);
  });
});
