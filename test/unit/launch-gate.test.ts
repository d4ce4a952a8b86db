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

describe('LaunchGate: telling the loops that look for a task whether a launch waits for them', () => {
  it('someoneWaits() holds while a request waits at the gate or for placed(); nextArrival() settles when one comes', async () => {
    const gate = new LaunchGate();
    assert.equal(gate.someoneWaits(0), false);
    let arrived = false;
    const arrival = gate.nextArrival(0).then(() => (arrived = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(arrived, false, 'nobody came yet');

    const holder = await gate.enter(0); // a free gate: entered at once, and an arrival all the same
    await arrival;
    assert.equal(gate.someoneWaits(0), false, 'the holder waits for nothing');

    const queued = gate.enter(0);
    assert.equal(gate.someoneWaits(0), true, 'a request waits at the gate');
    assert.equal(gate.someoneWaits(1), false, 'per backend');
    holder.release();
    (await queued).release();
    assert.equal(gate.someoneWaits(0), false);

    let find!: () => void;
    gate.notePlacing(0, new Promise<void>((resolve) => (find = resolve)));
    const next = gate.nextArrival(0);
    const waitingForPlacement = gate.placed(0);
    await next; // waiting for the placement is an arrival too
    assert.equal(gate.someoneWaits(0), true, 'a big launch waits for an unpinned task to be found');
    find();
    await waitingForPlacement;
    assert.equal(gate.someoneWaits(0), false);
    await gate.placed(0); // nothing left to wait for: not counted
    assert.equal(gate.someoneWaits(0), false);
  });
});
