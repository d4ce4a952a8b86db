import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LaunchGate } from '../../src/slots/launch-gate.js';

describe('LaunchGate', () => {
  it('lets one request per backend through at a time, in arrival order, and other backends freely', async () => {
    const gate = new LaunchGate();
    const order: string[] = [];
    const first = await gate.enter(0);
    const second = gate.enter(0).then((pass) => (order.push('second'), pass));
    const other = await gate.enter(1);
    order.push('other backend');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ['other backend'], 'the second waits for the first');
    first.release();
    first.release(); // idempotent
    const pass = await second;
    assert.deepEqual(order, ['other backend', 'second']);
    pass.release();
    other.release();
    const again = await gate.enter(0);
    again.release();
  });

  it('placed() waits for the unpinned tasks noted on that backend so far, settled either way', async () => {
    const gate = new LaunchGate();
    await gate.placed(0); // nothing noted: at once
    let findA!: (ok: boolean) => void;
    let failB!: (err: Error) => void;
    gate.notePlacing(0, new Promise<boolean>((resolve) => (findA = resolve)));
    gate.notePlacing(0, new Promise<boolean>((_, reject) => (failB = reject)));
    let done = false;
    const waiting = gate.placed(0).then(() => (done = true));
    await gate.placed(1); // another backend: at once
    findA(true);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(done, false, 'one task is still being looked for');
    failB(new Error('no slot list'));
    await waiting;
    await gate.placed(0); // both settled and gone
  });

  it('launched() waits for the unpinned tasks sent on that backend so far to run, apart from their placement', async () => {
    const gate = new LaunchGate();
    let runs!: () => void;
    gate.noteLaunching(0, new Promise<void>((resolve) => (runs = resolve)));
    gate.notePlacing(0, new Promise<boolean>(() => undefined)); // never found: launched() does not wait for it
    let done = false;
    const waiting = gate.launched(0).then(() => (done = true));
    await gate.launched(1); // another backend: at once
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(done, false, 'the task is still on its way');
    runs();
    await waiting;
  });
});
