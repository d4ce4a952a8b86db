import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ServerRamCacheLedger } from '../../src/backend/server-ram-cache.js';
import type { SlotContent } from '../../src/slots/slot-state.js';

/** A content of `blocks`, 100 tokens per block unless told. */
const content = (key: string, blocks: string[], extra: Partial<SlotContent> = {}): SlotContent => ({
  key,
  model: 'm',
  blocks,
  prefixLen: blocks.length * 100,
  big: true,
  saved: false,
  nTokens: blocks.length * 100,
  ...extra,
});
const MiB = 2 ** 20;
/** A ledger of `limitMiB` that knows model m's state takes 1 MiB per 100 tokens. */
function ledgerOf(limitMiB: number, now?: () => number): ServerRamCacheLedger {
  const ledger = new ServerRamCacheLedger(limitMiB, now);
  ledger.learnTokenSize('m', 100, MiB);
  return ledger;
}

describe('ServerRamCacheLedger', () => {
  it('finds the longest big entry a request continues, until it is taken', () => {
    const ledger = ledgerOf(-1);
    ledger.note(content('long', ['a', 'b', 'c']));
    ledger.note(content('other', ['x', 'y']));
    ledger.note(content('small', ['s', 't'], { big: false }));
    const hit = ledger.find('m', ['a', 'b', 'c', 'd']);
    assert.equal(hit?.content.key, 'long');
    assert.equal(ledger.find('m', ['a', 'b', 'c', 'd'])?.content.key, 'long', 'find alone leaves it there');
    ledger.take(hit!.content);
    assert.equal(ledger.find('m', ['a', 'b', 'c', 'd']), undefined, 'the server loaded it into a slot');
    assert.equal(ledger.find('other-model', ['x', 'y', 'z']), undefined, 'another model');
    assert.equal(ledger.find('m', ['q', 'y', 'z']), undefined, 'not a continuation');
    assert.equal(ledger.find('m', ['s', 't', 'u']), undefined, 'small contents only take room');
  });

  it('drops the entries a new content continues, as the server drops states a new one contains', () => {
    const ledger = ledgerOf(-1);
    ledger.note(content('turn1', ['a', 'b']));
    ledger.note(content('turn2', ['a', 'b', 'c']));
    ledger.note(content('turn2', ['a', 'b', 'c'])); // the same key again: one entry
    const hit = ledger.find('m', ['a', 'b', 'c', 'd']);
    ledger.take(hit!.content);
    assert.equal(ledger.find('m', ['a', 'b', 'z']), undefined, 'turn1 left when turn2 came in');
  });

  it('evicts the oldest entries beyond 90 % of the limit, and keeps one whatever its size', () => {
    const ledger = ledgerOf(10); // a budget of 9 MiB: 900 tokens
    ledger.note(content('old', ['a', 'b', 'c', 'd'])); // 4 MiB
    ledger.note(content('mid', ['e', 'f', 'g'])); // 7 MiB
    assert.equal(ledger.find('m', ['a', 'b', 'c', 'd', 'z'])?.sure, true);
    ledger.note(content('new', ['h', 'i', 'j'])); // 10 MiB > 9: old goes
    assert.equal(ledger.find('m', ['a', 'b', 'c', 'd', 'z']), undefined);
    assert.equal(ledger.find('m', ['e', 'f', 'g', 'z'])?.sure, true);
    ledger.note(
      content(
        'huge',
        Array.from({ length: 20 }, (_, i) => `h${i}`),
      ),
    );
    assert.equal(ledger.find('m', ['e', 'f', 'g', 'z']), undefined);
    assert.ok(ledger.find('m', [...Array.from({ length: 20 }, (_, i) => `h${i}`), 'z']), 'the newest stays');
  });

  it("counts an idle slot's copy against the limit, and never finds it", () => {
    const ledger = ledgerOf(10); // a budget of 9 MiB
    ledger.note(content('pushed', ['a', 'b', 'c', 'd'])); // 4 MiB
    ledger.noteCopy(content('idle', ['e', 'f', 'g'])); // 7 MiB
    assert.equal(ledger.find('m', ['e', 'f', 'g', 'z']), undefined, 'a copy the server may not have made');
    assert.equal(ledger.find('m', ['a', 'b', 'c', 'd', 'z'])?.sure, true);
    ledger.noteCopy(content('idle2', ['h', 'i', 'j'])); // 10 MiB > 9: the oldest goes
    assert.equal(ledger.find('m', ['a', 'b', 'c', 'd', 'z']), undefined, 'pushed out by the copies');
    ledger.note(content('idle', ['e', 'f', 'g'])); // the slot itself pushed out later: now counted on
    assert.equal(ledger.find('m', ['e', 'f', 'g', 'z'])?.content.key, 'idle');
  });

  it('is sure of an entry only if the launch about to happen leaves room for it', () => {
    const ledger = ledgerOf(10);
    ledger.note(content('conv', ['a', 'b', 'c'])); // 3 MiB
    ledger.note(content('next', ['e', 'f'])); // 2 MiB newer
    assert.equal(ledger.find('m', ['a', 'b', 'c', 'z'], 400)?.sure, true, '3 + 2 + 4 = 9 MiB fit');
    const pushedOut = ledger.find('m', ['a', 'b', 'c', 'z'], 500);
    assert.equal(pushedOut?.sure, false, 'the idle slots cleared first would push it out');
    assert.equal(pushedOut?.newerBytes, 7 * MiB);
  });

  it('is not sure of anything before a save told the size of a token, unless the cache has no limit', () => {
    const unknown = new ServerRamCacheLedger(8192);
    unknown.note(content('conv', ['a', 'b']));
    assert.equal(unknown.find('m', ['a', 'b', 'z'])?.sure, false);
    const unlimited = new ServerRamCacheLedger(-1);
    unlimited.note(content('conv', ['a', 'b']));
    assert.equal(unlimited.find('m', ['a', 'b', 'z'])?.sure, true);
    const off = ledgerOf(0);
    off.note(content('conv', ['a', 'b']));
    assert.equal(off.find('m', ['a', 'b', 'z']), undefined, '--cache-ram 0 keeps nothing');
  });

  it('lowers its limit to what was newer than an entry the server no longer had', () => {
    const ledger = ledgerOf(8192);
    ledger.note(content('a', ['a1', 'a2', 'a3']));
    ledger.note(content('b', ['b1', 'b2']));
    ledger.note(content('c', ['c1', 'c2']));
    const missed = ledger.find('m', ['a1', 'a2', 'a3', 'z'])!;
    assert.equal(missed.newerBytes, 4 * MiB);
    ledger.take(missed.content);
    ledger.noteMiss(missed);
    assert.ok(Math.abs(ledger.limitMiB - 4 / 0.9) < 1e-9, `limit ${ledger.limitMiB}`);
    assert.equal(ledger.find('m', ['c1', 'c2', 'z'])?.sure, true, 'c, the newest, fits');
    assert.equal(ledger.find('m', ['b1', 'b2', 'z'])?.sure, true, 'b and c fill the budget exactly');
    ledger.note(content('d', ['d1']));
    assert.equal(ledger.find('m', ['b1', 'b2', 'z']), undefined, 'one more entry pushes out the oldest now');
  });

  it('a miss of an entry it was not sure of leaves the limit alone', () => {
    const ledger = new ServerRamCacheLedger(8192);
    ledger.note(content('a', ['a1', 'a2']));
    const unsure = ledger.find('m', ['a1', 'a2', 'z'])!;
    assert.equal(unsure.sure, false);
    ledger.noteMiss(unsure);
    assert.equal(ledger.limitMiB, 8192);
  });

  it('takes an entry as gone after 30 minutes, and forgets everything when the server restarted', () => {
    let now = 0;
    const ledger = ledgerOf(-1, () => now);
    ledger.note(content('c', ['a', 'b']));
    ledger.note(content('d', ['c', 'd']));
    now += 30 * 60_000;
    assert.ok(ledger.find('m', ['a', 'b', 'z']));
    now += 1;
    assert.equal(ledger.find('m', ['c', 'd', 'z']), undefined, 'too old');
    ledger.note(content('e', ['e', 'f']));
    ledger.clear();
    assert.equal(ledger.find('m', ['e', 'f', 'z']), undefined);
  });

  it("forgets the entries of models no longer loaded (behind llama-swap each model's cache dies with its server)", () => {
    const ledger = ledgerOf(-1);
    ledger.note(content('kept', ['a', 'b']));
    ledger.note(content('gone', ['c', 'd'], { model: 'n' }));
    ledger.keepModels(new Set(['m']));
    assert.equal(ledger.find('n', ['c', 'd', 'z']), undefined);
    assert.equal(ledger.find('m', ['a', 'b', 'z'])?.content.key, 'kept');
  });

  it('has room for a content while its entries with it fill at most half of the limit, once a token size is known', () => {
    assert.equal(new ServerRamCacheLedger(8192).hasRoom('m', 100), false, 'size of a token not learnt yet');
    const ledger = ledgerOf(20); // a budget of 18 MiB, half of it 9 MiB: 900 tokens at 1 MiB per 100
    assert.equal(ledger.hasRoom('m', 900), true);
    assert.equal(ledger.hasRoom('m', 1000), false, 'a content bigger than half the limit');
    ledger.note(content('a', ['a1', 'a2', 'a3', 'a4', 'a5']));
    assert.equal(ledger.hasRoom('m', 400), true, '9 MiB with it');
    assert.equal(ledger.hasRoom('m', 500), false, '10 MiB with it');
    assert.equal(ledgerOf(0).hasRoom('m', 1), false, 'no RAM cache');
    assert.equal(ledgerOf(-1).hasRoom('m', 10 ** 9), true, 'no limit');
  });
});
