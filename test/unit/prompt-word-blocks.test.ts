import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockHashes, promptWords } from '../../src/prompt/prompt-analysis.js';
import { hashWordBlocks } from '../../src/prompt/word-blocks.js';

// Pieces chosen to hit every branch: ASCII upper/lower, digits, underscore, separators, 2/3/4-byte UTF-8,
// combining marks (not word chars), case mappings that change length (İ, ẞ), final sigma, the Kelvin sign
// (lower-cases to ASCII 'k'), an emoji (not a word char), a lone surrogate (encoded as U+FFFD).
const PIECES = [
  'A', 'z', 'Q', '0', '9', '_', ' ', '  ', '\n', '\t', '.', ',', '-', "'", 'ß', 'ẞ', 'İ', 'Σ', 'ς', 'é', 'e\u0301',
  '\u0301', 'Ж', 'я', '東', 'タ', '\u2028', '\u00a0', 'K', '😀', '𝐀', '𐐀', '\ud800', '٣', 'Ⅻ', '½',
];

function randomText(rand: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += PIECES[Math.floor(rand() * PIECES.length)];
  return s;
}

// Small deterministic PRNG (mulberry32) so a failure is reproducible.
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('hashWordBlocks equals promptWords + blockHashes on random Unicode text', () => {
  const rand = prng(42);
  for (let round = 0; round < 2000; round++) {
    const text = randomText(rand, Math.floor(rand() * 60));
    const wpb = 1 + Math.floor(rand() * 5);
    const words = promptWords(text);
    assert.deepEqual(hashWordBlocks(text, wpb), { wordCount: words.length, blocks: blockHashes(words, wpb) }, JSON.stringify(text));
  }
});

test('hashWordBlocks equals the reference on ASCII-only text (the fast path)', () => {
  const rand = prng(7);
  const ascii = PIECES.filter((p) => /^[\x00-\x7f]+$/.test(p));
  for (let round = 0; round < 1000; round++) {
    let text = '';
    for (let i = Math.floor(rand() * 80); i > 0; i--) text += ascii[Math.floor(rand() * ascii.length)];
    const words = promptWords(text);
    assert.deepEqual(hashWordBlocks(text, 3), { wordCount: words.length, blocks: blockHashes(words, 3) });
  }
});

test('hashWordBlocks: empty and separator-only text have no words', () => {
  assert.deepEqual(hashWordBlocks('', 100), { wordCount: 0, blocks: [] });
  assert.deepEqual(hashWordBlocks(' \n—😀 ', 100), { wordCount: 0, blocks: [] });
  assert.throws(() => hashWordBlocks('a', 0), RangeError);
});
