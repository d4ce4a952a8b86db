import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CacheMeta } from '../../src/cache/meta-file.js';
import { PrefixIndex } from '../../src/cache/prefix-index.js';

function meta(key: string, blocks: string[], over: Partial<CacheMeta> = {}): CacheMeta {
  return { key, model_id: 'm', prefix_len: 1, wpb: 100, blocks, timestamp: 1000, ...over };
}

const q = (blocks: string[], over: Partial<Parameters<PrefixIndex['findBest']>[0]> = {}) => ({
  model: 'm',
  wpb: 100,
  blocks,
  lcpTh: 0.6,
  ...over,
});

test('ratio = lcp / max(1, min(len(request), len(meta)))', () => {
  const index = new PrefixIndex();
  index.add(meta('k', ['a', 'b', 'c', 'd', 'e']));
  // Request longer than the meta: denominator is the meta's length.
  assert.deepEqual(pick(index.findBest(q(['a', 'b', 'c', 'd', 'e', 'f', 'g'])))!, { key: 'k', lcp: 5, ratio: 1 });
  // Request shorter than the meta: denominator is the request's length.
  assert.deepEqual(pick(index.findBest(q(['a', 'b', 'x']))), { key: 'k', lcp: 2, ratio: 2 / 3 });
  assert.deepEqual(pick(index.findBest(q(['a', 'b', 'c', 'x', 'y']))), { key: 'k', lcp: 3, ratio: 0.6 });
});

test('threshold: ratio ≥ lcpTh matches, below does not; lcp 0 never matches, even at lcpTh 0', () => {
  const index = new PrefixIndex();
  index.add(meta('k', ['a', 'b', 'c', 'd', 'e']));
  assert.equal(index.findBest(q(['a', 'b', 'c', 'x', 'y'], { lcpTh: 0.6 }))?.meta.key, 'k'); // exactly 0.6
  assert.equal(index.findBest(q(['a', 'b', 'x', 'y', 'z'], { lcpTh: 0.6 })), undefined); // 0.4
  assert.equal(index.findBest(q(['x', 'b', 'c'], { lcpTh: 0 })), undefined);
  assert.equal(index.findBest(q([], { lcpTh: 0 })), undefined);
});

test('only the same model and the same wpb are considered', () => {
  const index = new PrefixIndex();
  index.add(meta('other-model', ['a', 'b'], { model_id: 'n' }));
  index.add(meta('other-wpb', ['a', 'b'], { wpb: 50 }));
  assert.equal(index.findBest(q(['a', 'b'])), undefined);
  assert.equal(index.findBest(q(['a', 'b'], { model: 'n' }))?.meta.key, 'other-model');
  assert.equal(index.findBest(q(['a', 'b'], { wpb: 50 }))?.meta.key, 'other-wpb');
});

test('the best ratio wins, not the longest lcp (seed rule)', () => {
  const index = new PrefixIndex();
  index.add(meta('short-full', ['a', 'b']));
  index.add(meta('long-partial', ['a', 'b', 'c', 'd', 'x', 'y', 'z', 'w', 'v', 'u']));
  // short-full: 2/2 = 1; long-partial: 4/10 = 0.4 → short-full, although long-partial shares more blocks.
  const request = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
  assert.equal(index.findBest(q(request, { lcpTh: 0.1 }))?.meta.key, 'short-full');
});

test('ties on ratio: newer timestamp, then longer lcp, then smaller key', () => {
  const index = new PrefixIndex();
  index.add(meta('old', ['a', 'b'], { timestamp: 100 }));
  index.add(meta('new', ['a', 'b', 'c'], { timestamp: 200 }));
  assert.equal(index.findBest(q(['a', 'b', 'c', 'd']))?.meta.key, 'new'); // both ratio 1
  index.add(meta('new', ['a', 'b', 'c'], { timestamp: 50 }));
  assert.equal(index.findBest(q(['a', 'b', 'c', 'd']))?.meta.key, 'old');
  index.add(meta('old', ['a', 'b'], { timestamp: 50 }));
  assert.equal(index.findBest(q(['a', 'b', 'c', 'd']))?.meta.key, 'new'); // same time, lcp 3 > 2
  index.add(meta('zz', ['a', 'b', 'c'], { timestamp: 50 }));
  index.add(meta('aa', ['a', 'b', 'c'], { timestamp: 50 }));
  assert.equal(index.findBest(q(['a', 'b', 'c', 'd']))?.meta.key, 'aa');
});

test('accept filter excludes entries (e.g. on another backend)', () => {
  const index = new PrefixIndex();
  index.add(meta('b0', ['a', 'b'], { backend: 'http://b0', timestamp: 2 }));
  index.add(meta('b1', ['a', 'b'], { backend: 'http://b1', timestamp: 1 }));
  assert.equal(index.findBest(q(['a', 'b']))?.meta.key, 'b0');
  assert.equal(index.findBest(q(['a', 'b'], { accept: (m) => m.backend === 'http://b1' }))?.meta.key, 'b1');
  assert.equal(index.findBest(q(['a', 'b'], { accept: () => false })), undefined);
});

test('add replaces the same key (also when its first block changes); remove returns the entry', () => {
  const index = new PrefixIndex();
  index.add(meta('k', ['a', 'b']));
  index.add(meta('k', ['x', 'y']));
  assert.equal(index.size, 1);
  assert.equal(index.findBest(q(['a', 'b'])), undefined);
  assert.equal(index.findBest(q(['x', 'y']))?.meta.key, 'k');
  assert.deepEqual(index.remove('k')?.blocks, ['x', 'y']);
  assert.equal(index.remove('k'), undefined);
  assert.equal(index.size, 0);
  assert.equal(index.get('k'), undefined);
  assert.equal(index.findBest(q(['x', 'y'])), undefined);
});

test('entries without blocks are kept but never match', () => {
  const index = new PrefixIndex();
  index.add(meta('empty', []));
  assert.equal(index.get('empty')?.key, 'empty');
  assert.deepEqual(
    [...index.entries()].map((m) => m.key),
    ['empty'],
  );
  assert.equal(index.findBest(q(['a'], { lcpTh: 0 })), undefined);
  assert.equal(index.remove('empty')?.key, 'empty');
});

test('findBest agrees with a brute-force scan of the seed rule on random entries', () => {
  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const alphabet = ['a', 'b', 'c'];
  const randBlocks = () => Array.from({ length: Math.floor(rand() * 6) }, () => alphabet[Math.floor(rand() * 3)]!);
  for (let round = 0; round < 300; round++) {
    const index = new PrefixIndex();
    const all: CacheMeta[] = [];
    for (let i = 0; i < 8; i++) {
      const m = meta(`k${i}`, randBlocks(), {
        model_id: rand() < 0.8 ? 'm' : 'n',
        wpb: rand() < 0.8 ? 100 : 10,
        timestamp: Math.floor(rand() * 4),
      });
      all.push(m);
      index.add(m);
    }
    const request = randBlocks();
    const lcpTh = [0, 0.3, 0.5, 0.6, 1][round % 5]!;
    const expected = bruteForce(all, request, lcpTh);
    assert.deepEqual(pick(index.findBest(q(request, { lcpTh }))), expected, JSON.stringify({ request, lcpTh, all }));
  }
});

// The seed's loop (best starts at ratio 0, strictly greater replaces), with our tie order instead of file order.
function bruteForce(all: CacheMeta[], request: string[], lcpTh: number) {
  let best: { key: string; lcp: number; ratio: number; ts: number } | undefined;
  for (const m of all) {
    if (m.model_id !== 'm' || m.wpb !== 100) continue;
    let lcp = 0;
    while (lcp < Math.min(request.length, m.blocks.length) && request[lcp] === m.blocks[lcp]) lcp++;
    const ratio = lcp / Math.max(1, Math.min(request.length, m.blocks.length));
    if (!(ratio >= lcpTh && ratio > 0)) continue;
    const better =
      !best ||
      ratio > best.ratio ||
      (ratio === best.ratio &&
        (m.timestamp > best.ts ||
          (m.timestamp === best.ts && (lcp > best.lcp || (lcp === best.lcp && m.key < best.key)))));
    if (better) best = { key: m.key, lcp, ratio, ts: m.timestamp };
  }
  return best && { key: best.key, lcp: best.lcp, ratio: best.ratio };
}

test('pins are refcounted and independent of entries', () => {
  const index = new PrefixIndex();
  assert.equal(index.isPinned('k'), false);
  index.pin('k');
  index.pin('k');
  index.unpin('k');
  assert.equal(index.isPinned('k'), true);
  index.unpin('k');
  assert.equal(index.isPinned('k'), false);
  index.unpin('k'); // extra unpin is ignored
  index.pin('k');
  assert.equal(index.isPinned('k'), true);
});

function pick(match: ReturnType<PrefixIndex['findBest']>) {
  return match && { key: match.meta.key, lcp: match.lcp, ratio: match.ratio };
}

test('prefer lcp (smart policy): the longest shared prefix beats a shorter entry with a whole-block ratio', () => {
  const index = new PrefixIndex();
  const base = { model_id: 'm', prefix_len: 1, wpb: 8 };
  index.add({ ...base, key: 'turn1', blocks: ['a', 'b'], timestamp: 1 });
  index.add({ ...base, key: 'turn2', blocks: ['a', 'b', 'c', 'x'], timestamp: 2 });
  const query = { model: 'm', wpb: 8, blocks: ['a', 'b', 'c', 'd', 'e'], lcpTh: 0.6 };
  assert.equal(index.findBest(query)?.meta.key, 'turn1', 'seed rule: ratio 1 beats ratio 0.75');
  assert.equal(index.findBest({ ...query, prefer: 'lcp' })?.meta.key, 'turn2');
});
