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
});
