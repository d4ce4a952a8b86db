/** Random text built from pieces that hit every branch of the prompt analysis (for property tests). */
import { mulberry32 } from '../../src/sim/prng.js';

// ASCII upper/lower, digits, underscore, separators, 2/3/4-byte UTF-8, combining marks (not word chars), case
// mappings that change length (İ, ẞ), final sigma, the Kelvin sign (lower-cases to ASCII 'k'), an emoji (not a
// word char), a lone surrogate (encoded as U+FFFD), and Python-only spaces (U+001C, NEL).
export const PIECES = [
  'A',
  'z',
  'Q',
  '0',
  '9',
  '_',
  ' ',
  '  ',
  '\n',
  '\t',
  '.',
  ',',
  '-',
  "'",
  'ß',
  'ẞ',
  'İ',
  'Σ',
  'ς',
  'é',
  'e\u0301',
  '\u0301',
  'Ж',
  'я',
  '東',
  'タ',
  '\u2028',
  '\u00a0',
  'K',
  '😀',
  '𝐀',
  '𐐀',
  '\ud800',
  '٣',
  'Ⅻ',
  '½',
  '\u001c',
  '\u0085',
];

/** A seeded generator: the same seed gives the same sequence, so a failure is reproducible. */
export const prng = mulberry32;

export function randomText(rand: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += PIECES[Math.floor(rand() * PIECES.length)];
  return s;
}
