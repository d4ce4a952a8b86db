/** A test stack whose proxy reaches the simulator through a recording tap (see tap.ts), to see what went upstream. */
import { afterEach } from 'node:test';
import { startStack } from './stack.js';
import type { Stack, StackOptions } from './stack.js';
import { startTap } from './tap.js';
import type { Tap } from './tap.js';
import { closeStack } from './teardown.js';

export interface TappedStack {
  stack: Stack;
  tap: Tap;
  /**
   * Where the tapped proxy's log lines begin in `stack.logs.lines`: the lines before it are the first proxy's,
   * which ran straight at the simulator until the tap was in place.
   */
  logMark: number;
}

/**
 * `startStack(options)`, then the proxy restarted in front of a tap on the simulator, so the tap sees every
 * request the proxy sends. `options.env` holds for both proxies. BACKEND_TYPE is llama-server (no kind probes in
 * the tap) unless `options.env` names one, as a llama-swap or router simulator needs.
 */
export async function startTappedStack(options: StackOptions = {}): Promise<TappedStack> {
  const stack = await startStack(options);
  const tap = await startTap(stack.sim.url);
  const logMark = stack.logs.lines.length;
  await stack.restartProxy({ LLAMA_URL: tap.url, BACKEND_TYPE: options.env?.BACKEND_TYPE ?? 'llama-server' });
  return { stack, tap, logMark };
}

/** Close the stack (with closeStack's deadline), then the tap, also when the stack did not close in time. */
export async function closeTappedStack({ stack, tap }: Pick<TappedStack, 'stack' | 'tap'>): Promise<void> {
  try {
    await closeStack(stack);
  } finally {
    await tap.close();
  }
}

/**
 * For a describe whose tests each start a plain or a tapped stack: `keep` it (returns it), and it is closed after
 * the test, whatever the test did.
 */
export function stacksPerTest(): { keep<T extends Stack | TappedStack>(started: T): T } {
  let current: Stack | TappedStack | undefined;
  afterEach(async () => {
    const started = current;
    current = undefined;
    if (started && 'tap' in started) await closeTappedStack(started);
    else if (started) await closeStack(started);
  });
  return {
    keep(started) {
      current = started;
      return started;
    },
  };
}
