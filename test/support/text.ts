/** Deterministic prose for tests and benchmarks: the same seed always gives the same words. */

const VOCABULARY = (
  'time year people way day man thing woman life child world school state family student group country problem ' +
  'hand part place case week company system program question work government number night point home water room ' +
  'mother area money story fact month lot right study book eye job word business issue side kind head house ' +
  'service friend father power hour game line end member law car city community name president team minute idea ' +
  'kid body information back parent face others level office door health person art war history party result ' +
  'change morning reason research girl guy moment air teacher force education function variable return import'
).split(' ');

/** The seeded PRNG the simulator uses for its replies. */
export { mulberry32 as prng } from '../../src/sim/prng.js';
import { mulberry32 as prng } from '../../src/sim/prng.js';

/** `count` words drawn from a fixed vocabulary, seeded. */
export function words(count: number, seed: number): string {
  const next = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(VOCABULARY[Math.floor(next() * VOCABULARY.length)]!);
  return out.join(' ');
}
