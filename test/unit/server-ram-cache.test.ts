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
  });

  it('notes only big content that was not on disk', () => {
    const ledger = new ServerRamCacheLedger();
    ledger.note(content('saved', ['a'], { saved: true }));
    ledger.note(content('small', ['b'], { big: false }));
    assert.equal(ledger.takeContinuedBy('m', ['a', 'z']), undefined);
    assert.equal(ledger.takeContinuedBy('m', ['b', 'z']), undefined);
  });

  it('trusts an entry for a few big task starts and a few minutes: the RAM cache evicts by itself', () => {
    let now = 0;
    const ledger = new ServerRamCacheLedger(() => now);
    ledger.note(content('c', ['a']));
    for (let i = 0; i < 10; i++) ledger.noteTaskStart(false);
    for (let i = 0; i < 4; i++) ledger.noteTaskStart(true);
    assert.equal(ledger.takeContinuedBy('m', ['a', 'z'])?.key, 'c', 'small tasks push next to nothing');
    ledger.note(content('c', ['a']));
    ledger.noteTaskStart(true);
    assert.equal(ledger.takeContinuedBy('m', ['a', 'z'])?.key, 'c', 'noted again: counted from then');
    ledger.note(content('c', ['a']));
    for (let i = 0; i < 5; i++) ledger.noteTaskStart(true);
    assert.equal(ledger.takeContinuedBy('m', ['a', 'z']), undefined, 'five big starts since');
    ledger.note(content('d', ['b']));
    now += 5 * 60_000 + 1;
    assert.equal(ledger.takeContinuedBy('m', ['b', 'z']), undefined, 'too old');
  });

  it('forgets everything when the server restarted', () => {
    const ledger = new ServerRamCacheLedger();
    ledger.note(content('c', ['a']));
    ledger.clear();
    assert.equal(ledger.takeContinuedBy('m', ['a', 'z']), undefined);
  });
});
