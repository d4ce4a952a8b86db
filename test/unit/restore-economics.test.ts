import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RestoreEconomics, USELESS_RESTORES_LIMIT } from '../../src/slots/restore-economics.js';

describe('RestoreEconomics', () => {
  it('assumes a restore is worth it until speeds are measured', () => {
    const e = new RestoreEconomics();
    assert.equal(e.restoreWorthIt('m', 10_000, 100), true);
    assert.equal(e.restoreWorthIt('m', 10_000, 0), false, 'nothing to gain, nothing to restore');
  });

  it('compares measured restore cost with the prefill it avoids', () => {
    const e = new RestoreEconomics();
    e.notePrefill('m', 4000, 1000); // 0.25 ms/token
    e.noteRestoreSpeed('m', 16_000, 800); // 0.05 ms/token
    assert.equal(e.restoreWorthIt('m', 16_000, 8000), true, '800 ms restore beats 2000 ms prefill');
    assert.equal(e.restoreWorthIt('m', 16_000, 1000), false, '800 ms restore loses to 250 ms prefill');
  });

  it('takes the prefill speed from prefills that ran alone: one that shared the server does not move it', () => {
    const e = new RestoreEconomics();
    e.noteRestoreSpeed('m', 16_000, 800); // 0.05 ms/token: a 16,000-token restore takes 800 ms
    e.notePrefill('m', 4000, 1000); // 0.25 ms/token alone
    for (let i = 0; i < 5; i++) e.notePrefill('m', 4000, 4000, true); // 1 ms/token while a restore held the server
    // Still 0.25 ms/token: the restore beats prefilling 3,300 tokens (825 ms), not 3,100 (775 ms).
    assert.equal(e.restoreWorthIt('m', 16_000, 3300), true);
    assert.equal(e.restoreWorthIt('m', 16_000, 3100), false);
  });

  it('without a prefill that ran alone, takes a low quantile of the shared ones', () => {
    const e = new RestoreEconomics();
    e.noteRestoreSpeed('m', 16_000, 800);
    for (const ms of [4000, 2000, 8000, 4000]) e.notePrefill('m', 4000, ms, true); // 1, 0.5, 2, 1 ms/token
    // 0.5 ms/token: the restore (800 ms) beats prefilling 1,700 tokens (850 ms), not 1,500 (750 ms).
    assert.equal(e.restoreWorthIt('m', 16_000, 1700), true);
    assert.equal(e.restoreWorthIt('m', 16_000, 1500), false);
  });

  it('ignores tiny prefills whose speed is mostly overhead', () => {
    const e = new RestoreEconomics();
    e.notePrefill('m', 3, 100);
    e.noteRestoreSpeed('m', 1000, 1000);
    assert.equal(e.restoreWorthIt('m', 1000, 10), true, 'no prefill speed yet: assumed worth it');
  });

  it('disables restores for a model whose restores bring no reuse, once, and keeps others enabled', () => {
    const e = new RestoreEconomics();
    const outcomes = Array.from({ length: USELESS_RESTORES_LIMIT + 1 }, () => e.noteRestoreOutcome('swa', 5000, 0));
    assert.deepEqual(outcomes, [...Array(USELESS_RESTORES_LIMIT - 1).fill('useless'), 'disabled', 'useless']);
    assert.equal(e.restoresEnabled('swa'), false);
    assert.equal(e.restoresEnabled('dense'), true);
  });

  it('a restore that is reused resets the count', () => {
    const e = new RestoreEconomics();
    for (let i = 0; i < USELESS_RESTORES_LIMIT - 1; i++) e.noteRestoreOutcome('m', 5000, 0);
    assert.equal(e.noteRestoreOutcome('m', 5000, 4990), 'ok');
    assert.equal(e.noteRestoreOutcome('m', 5000, 0), 'useless');
    assert.equal(e.restoresEnabled('m'), true);
  });

  it('assumes a re-save is worth it until both prefill and save speeds are measured', () => {
    const e = new RestoreEconomics();
    assert.equal(e.resaveWorthIt('m', 20_000, 1), true, 'nothing measured');
    e.notePrefill('m', 4000, 1000);
    assert.equal(e.resaveWorthIt('m', 20_000, 1), true, 'prefill measured, save not');
    const f = new RestoreEconomics();
    f.noteSaveSpeed('m', 20_000, 1000);
    assert.equal(f.resaveWorthIt('m', 20_000, 1), true, 'save measured, prefill not');
  });

  it('re-saves once prefilling the growth again would cost at least as much as writing the whole slot', () => {
    const e = new RestoreEconomics();
    e.notePrefill('m', 4000, 1000); // 0.25 ms/token
    e.noteSaveSpeed('m', 20_000, 1000); // 0.05 ms/token: a 20k-token slot takes 1000 ms to write
    assert.equal(e.resaveWorthIt('m', 20_000, 1000), false, '250 ms of prefill later beats 1000 ms of save now');
    assert.equal(e.resaveWorthIt('m', 20_000, 3999), false, 'just below the break-even point');
    assert.equal(e.resaveWorthIt('m', 20_000, 4000), true, '1000 ms of prefill: break-even, save');
    assert.equal(e.resaveWorthIt('m', 20_000, 8000), true);
    assert.equal(e.resaveWorthIt('other', 20_000, 1000), true, 'speeds are per model');
  });

  it('smooths save speeds and ignores saves that report no tokens', () => {
    const e = new RestoreEconomics();
    e.notePrefill('m', 1000, 250); // 0.25 ms/token
    e.noteSaveSpeed('m', 1000, 50); // 0.05 ms/token
    e.noteSaveSpeed('m', undefined, 5000);
    e.noteSaveSpeed('m', 0, 5000);
    assert.equal(e.resaveWorthIt('m', 1000, 199), false, 'still 0.05 ms/token: 200 tokens break even');
    e.noteSaveSpeed('m', 1000, 550); // one slow save: 0.7 × 0.05 + 0.3 × 0.55 = 0.2 ms/token
    assert.equal(e.resaveWorthIt('m', 1000, 790), false);
    assert.equal(e.resaveWorthIt('m', 1000, 810), true);
  });
});
