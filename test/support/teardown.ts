/** Teardown with a deadline: a proxy that still waits on its backend must fail the hook, not hang the suite. */
import { withDeadline } from './deadline.js';
import type { Stack } from './stack.js';

/**
 * Close the stack within `ms`. If that does not happen (a request still waiting upstream keeps the proxy's
 * backend pool open), close the simulator first, which cuts every upstream connection, finish the close, and
 * fail with the first error.
 */
export async function closeStack(stack: Stack, ms = 5000): Promise<void> {
  const closing = stack.close();
  try {
    await withDeadline(closing, ms, 'the stack to close');
  } catch (err) {
    await stack.sim.close().catch(() => undefined);
    await withDeadline(closing, ms, 'the stack to close after the simulator was closed').catch(() => undefined);
    throw err;
  }
}
