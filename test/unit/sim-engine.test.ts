/**
 * The simulator's compute engines in model time (time scale 0, nothing sleeps): the shared engine serialises a
 * process's work like llama-server's main loop (each batch takes the prefilling slots' prompts in slot-id order,
 * decodes of all slots go in one batch, tasks hold everything), the per-slot engine runs every piece of work alone
 * at full speed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortedError, resolveCostModel } from '../../src/sim/cost-model.js';
import { PerSlotEngine } from '../../src/sim/per-slot-engine.js';
import { SharedEngine } from '../../src/sim/shared-engine.js';

// 1 ms per prompt token, 10 ms per decode step, 100-token batches.
const cost = resolveCostModel({ timeScale: 0, prefillMsPerToken: 1, decodeMsPerToken: 10, batchTokens: 100 });
const never = new AbortController().signal;
const ignore = (): void => undefined;

describe('sim shared engine', () => {
  it('prefills alone in batches at the full speed', async () => {
    const engine = new SharedEngine(cost);
    const progress: number[] = [];
    assert.equal(await engine.prefill(250, never, (done) => progress.push(done)), 250);
    assert.deepEqual(progress, [100, 200, 250]);
  });

  it('fills each batch with the prefilling slots in slot-id order, as llama-server does', async () => {
    const engine = new SharedEngine(cost);
    // A, sent first on slot 1, waits for B's batches on slot 0; the batch that ends B takes A's first 50 tokens.
    const [a, b] = await Promise.all([engine.prefill(400, never, ignore, 1), engine.prefill(150, never, ignore, 0)]);
    assert.deepEqual([a, b], [550, 200]);
    // Sent the other way round, the same: the slots decide, not the order the prompts came in.
    const [c, d] = await Promise.all([engine.prefill(150, never, ignore, 0), engine.prefill(400, never, ignore, 1)]);
    assert.deepEqual([c, d], [200, 550]);
  });

  it('decodes every generating slot in one batch: concurrent decodes do not slow each other', async () => {
    const engine = new SharedEngine(cost);
    const spans = await Promise.all([
      engine.generate(5, never, ignore),
      engine.generate(5, never, ignore),
      engine.generate(3, never, ignore),
    ]);
    assert.deepEqual(spans, [50, 50, 30]);
  });

  it('charges an iteration its prompt chunk plus one decode step', async () => {
    const engine = new SharedEngine(cost);
    const tokens: number[] = [];
    const [decode, prefill] = await Promise.all([
      engine.generate(4, never, (i) => tokens.push(i)),
      engine.prefill(200, never, ignore),
    ]);
    assert.equal(prefill, 2 * (100 + 10));
    assert.equal(decode, 2 * (100 + 10) + 2 * 10);
    assert.deepEqual(tokens, [0, 1, 2, 3]);
  });

  it('runs a task between iterations and holds every slot for its whole duration', async () => {
    const engine = new SharedEngine(cost);
    const order: string[] = [];
    let task: Promise<string> | undefined;
    const decode = engine.generate(3, never, (i) => {
      order.push(`token ${i}`);
      if (i === 0) {
        task = engine.task(async (hold) => {
          order.push('task');
          await hold(500);
          return 'saved';
        });
      }
    });
    let prefillTask: Promise<void> | undefined;
    const prefill = engine.prefill(300, never, (done) => {
      if (done === 100) prefillTask = engine.task((hold) => hold(250));
    });
    // Three iterations of a prompt chunk and a decode step, with both tasks between the first and the second.
    assert.equal(await decode, 3 * (100 + 10) + 250 + 500);
    assert.equal(await prefill, 3 * (100 + 10) + 250 + 500);
    assert.equal(await task, 'saved');
    await prefillTask;
    assert.deepEqual(order, ['token 0', 'task', 'token 1', 'token 2']);
  });

  it('lets an aborted prefill go at once, having reported what it processed, and serves the others', async () => {
    const engine = new SharedEngine(cost);
    const ac = new AbortController();
    let processed = 0;
    const aborted = engine.prefill(1000, ac.signal, (done) => {
      processed = done;
      if (done === 300) ac.abort();
    });
    const other = engine.prefill(200, never, ignore, 1);
    await assert.rejects(aborted, AbortedError);
    assert.equal(processed, 300);
    assert.equal(await other, 500, 'its two batches came after the aborted one gave up, on a lower slot');
    assert.equal(await engine.prefill(100, never, ignore), 100);
  });

  it('ends a generation whose token callback throws, and rejects work whose signal already fired', async () => {
    const engine = new SharedEngine(cost);
    await assert.rejects(
      engine.generate(5, never, (i) => {
        if (i === 1) throw new Error('socket gone');
      }),
      /socket gone/,
    );
    await assert.rejects(engine.prefill(10, AbortSignal.abort(), ignore), AbortedError);
    assert.equal(await engine.generate(0, never, ignore), 0);
  });
});

describe('sim per-slot engine', () => {
  it('runs every piece of work alone at the full speed (the older model)', async () => {
    const engine = new PerSlotEngine(cost);
    assert.deepEqual(
      await Promise.all([engine.prefill(400, never, ignore), engine.prefill(400, never, ignore)]),
      [400, 400],
    );
    let task: Promise<void> | undefined;
    const decode = engine.generate(3, never, (i) => {
      if (i === 0) task = engine.task((hold) => hold(500));
    });
    assert.equal(await decode, 30, 'a task holds nothing up');
    await task;
  });
});
