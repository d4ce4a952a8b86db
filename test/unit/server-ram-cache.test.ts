import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ServerRamCacheLedger } from '../../src/backend/server-ram-cache.js';
import type { SlotContent } from '../../src/slots/slot-state.js';

const content = (key: string, blocks: string[], extra: Partial<SlotContent> = {}): SlotContent => ({
  key,
  model: 'm',
  blocks,
  prefixLen: blocks.length * 100,
  big: true,
  saved: false,
  nTokens: blocks.length * 50,
  ...extra,
});

describe('ServerRamCacheLedger', () => {
  it('gives back, once, the longest noted conversation a request continues', () => {
    const ledger = new ServerRamCacheLedger();
    ledger.note(content('short', ['a', 'b']));
    ledger.note(content('long', ['a', 'b', 'c']));
    ledger.note(content('other', ['x', 'y']));
    assert.equal(ledger.takeContinuedBy('m', ['a', 'b', 'c', 'd'])?.key, 'long');
    assert.equal(ledger.takeContinuedBy('m', ['a', 'b', 'c', 'd'])?.key, 'short', 'taken entries are gone');
    assert.equal(ledger.takeContinuedBy('m', ['a', 'b', 'c', 'd']), undefined);
    assert.equal(ledger.takeContinuedBy('other-model', ['x', 'y', 'z']), undefined, 'another model');
    assert.equal(ledger.takeContinuedBy('m', ['q', 'y', 'z']), undefined, 'not a continuation');
    ledger.note(content('one-block', ['k']));
    assert.equal(ledger.takeContinuedBy('m', ['j', 'z']), undefined, 'nothing in common');
  });

  it('notes only big content that was not on disk', () => {
    const ledger = new ServerRamCacheLedger();
    ledger.note(content('saved', ['a', 'b'], { saved: true }));
    ledger.note(content('small', ['c', 'd'], { big: false }));
    assert.equal(ledger.takeContinuedBy('m', ['a', 'b', 'z']), undefined);
    assert.equal(ledger.takeContinuedBy('m', ['c', 'd', 'z']), undefined);
  });

  it('keeps an entry ten minutes at most', () => {
    let now = 0;
    const ledger = new ServerRamCacheLedger(() => now);
    ledger.note(content('c', ['a', 'b']));
    ledger.note(content('d', ['c', 'd']));
    now += 10 * 60_000;
    assert.equal(ledger.takeContinuedBy('m', ['a', 'b', 'z'])?.key, 'c');
    now += 1;
    assert.equal(ledger.takeContinuedBy('m', ['c', 'd', 'z']), undefined, 'too old');
  });

  it('forgets everything when the server restarted', () => {
    const ledger = new ServerRamCacheLedger();
    ledger.note(content('c', ['a', 'b']));
    ledger.clear();
    assert.equal(ledger.takeContinuedBy('m', ['a', 'b', 'z']), undefined);
  });
});
