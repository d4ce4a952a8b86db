/** A test stack whose proxy reaches the simulator through a recording tap (see tap.ts), to see what went upstream. */
import { startStack } from './stack.js';
import type { Stack, StackOptions } from './stack.js';
import { startTap } from './tap.js';
import type { Tap } from './tap.js';
import { closeStack } from './teardown.js';

export interface TappedStack {
  stack: Stack;
  tap: Tap;
}

export async function startTappedStack(options: StackOptions = {}): Promise<TappedStack> {
  const stack = await startStack(options);
  const tap = await startTap(stack.sim.url);
  await stack.restartProxy({ LLAMA_URL: tap.url, BACKEND_TYPE: 'llama-server' });
  return { stack, tap };
}

export async function closeTappedStack({ stack, tap }: TappedStack): Promise<void> {
  await closeStack(stack);
  await tap.close();
}
