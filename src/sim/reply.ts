/**
 * Deterministic reply text: the same prompt always produces the same words, like a model at temperature 0, so
 * tests can compare answers and multi-turn conversations replay identically.
 */
import { mulberry32 } from './prng.js';
import { hash32 } from './tokenizer.js';

const WORDS = [
  'alpha',
  'bravo',
  'cache',
  'delta',
  'echo',
  'forge',
  'gamma',
  'harbor',
  'index',
  'joule',
  'kernel',
  'lumen',
  'matrix',
  'nova',
  'orbit',
  'prism',
  'quartz',
  'relay',
  'sigma',
  'token',
  'umbra',
  'vector',
  'willow',
  'xenon',
  'yield',
  'zephyr',
  'expert',
  'Alfred',
  'quatre',
  'Stef',
  'improvit',
  'river',
  'moon',
  'field',
  'school',
  'piece',
];

/**
 * Returns a generator of reply tokens seeded from the prompt text: words, each after the first with a leading
 * space, so the reply text is the same whether or not a client trims it before sending it back as history.
 */
export function replyGenerator(promptText: string): () => string {
  const next = mulberry32(hash32(promptText));
  let first = true;
  return () => {
    const word = WORDS[Math.floor(next() * WORDS.length)]!;
    if (!first) return ' ' + word;
    first = false;
    return word;
  };
}
