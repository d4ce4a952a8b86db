/**
 * RamTierPayoff: leaving answers to the server's RAM cache pays while the share of them that needs a rescue, times a
 * rescue's time, stays under a save's time; where it does not, one answer in EXPLORE_EVERY is left anyway.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXPLORE_EVERY, RamTierPayoff } from '../../src/slots/ram-tier-payoff.js';

/** `left` answers left on `backend`, `rescued` of them rescued at `rescueMs` each, `saveMs` of it the save. */
function history(
  payoff: RamTierPayoff,
  {
    backend = 0,
    left,
    rescued,
    rescueMs,
    saveMs,
  }: { backend?: number; left: number; rescued: number; rescueMs: number; saveMs: number },
): void {
  for (let i = 0; i < left; i++) payoff.noteLeft(backend);
  for (let i = 0; i < rescued; i++) payoff.noteRescue(backend, rescueMs, saveMs);
}

/** The next `n` decisions on `backend`. */
const decisions = (payoff: RamTierPayoff, n: number, backend = 0) =>
  Array.from({ length: n }, () => payoff.leaveNext(backend).leave);

describe('RamTierPayoff', () => {
  it('pays until a few rescues have run, however dear they were', () => {
    const payoff = new RamTierPayoff();
    assert.deepEqual(decisions(payoff, 3), [true, true, true]);
    history(payoff, { left: 2, rescued: 2, rescueMs: 500, saveMs: 10 });
    assert.equal(payoff.verdict(0).pays, true);
    assert.equal(payoff.leaveNext(0).leave, true);
  });

  it('stops paying where most left answers are rescued at several times a save, and then leaves one in EXPLORE_EVERY', () => {
    const payoff = new RamTierPayoff();
    history(payoff, { left: 6, rescued: 5, rescueMs: 140, saveMs: 12 });
    const verdict = payoff.verdict(0);
    assert.equal(verdict.pays, false);
    assert.deepEqual(verdict, { pays: false, left: 6, rescued: 5, rescueMs: 140, saveMs: 12 });
    const next = decisions(payoff, 2 * EXPLORE_EVERY);
    assert.deepEqual(
      next.map((leave, i) => (leave ? i : -1)).filter((i) => i >= 0),
      [EXPLORE_EVERY - 1, 2 * EXPLORE_EVERY - 1],
    );
  });

  it('keeps paying where few left answers need a rescue (their conversations come back first)', () => {
    const payoff = new RamTierPayoff();
    history(payoff, { left: 40, rescued: 3, rescueMs: 100, saveMs: 12 }); // 3/40 × 100 = 7.5 ms < 12 ms
    assert.equal(payoff.verdict(0).pays, true);
    assert.deepEqual(decisions(payoff, 4), [true, true, true, true]);
  });

  it('pays again once the answers left while exploring come back without rescues', () => {
    const payoff = new RamTierPayoff();
    history(payoff, { left: 4, rescued: 4, rescueMs: 120, saveMs: 10 });
    assert.equal(payoff.verdict(0).pays, false);
    let leftSince = 0;
    for (let i = 0; i < 400 && !payoff.verdict(0).pays; i++) {
      if (!payoff.leaveNext(0).leave) continue;
      payoff.noteLeft(0); // left, and its conversation took it back: no rescue
      leftSince++;
    }
    assert.equal(payoff.verdict(0).pays, true);
    // 4 rescued of 4 + n left pays once 4 / (4 + n) × 120 < 10, i.e. from n = 45.
    assert.equal(leftSince, 45);
  });

  it('follows the recent share: old counts are halved as answers are left', () => {
    const payoff = new RamTierPayoff();
    history(payoff, { left: 63, rescued: 6, rescueMs: 100, saveMs: 12 });
    payoff.noteLeft(0);
    assert.equal(payoff.verdict(0).left, 32);
    assert.equal(payoff.verdict(0).rescued, 3);
  });

  it('takes the rescues’ times as running means, the last ones weighing most', () => {
    const payoff = new RamTierPayoff();
    payoff.noteRescue(0, 100, 10);
    payoff.noteRescue(0, 200, 30);
    assert.deepEqual([payoff.verdict(0).rescueMs, payoff.verdict(0).saveMs], [125, 15]);
  });

  it('tells a change of verdict to the first decision that sees it, once', () => {
    const payoff = new RamTierPayoff();
    assert.equal(payoff.leaveNext(0).changed, false, 'it pays at first');
    history(payoff, { left: 5, rescued: 5, rescueMs: 140, saveMs: 12 });
    assert.deepEqual(
      Array.from({ length: 3 }, () => payoff.leaveNext(0).changed),
      [true, false, false],
    );
  });

  it('keeps each backend to itself', () => {
    const payoff = new RamTierPayoff();
    history(payoff, { backend: 0, left: 5, rescued: 5, rescueMs: 140, saveMs: 12 });
    assert.equal(payoff.verdict(0).pays, false);
    assert.equal(payoff.verdict(1).pays, true);
    assert.deepEqual(decisions(payoff, 3, 1), [true, true, true]);
  });
});
