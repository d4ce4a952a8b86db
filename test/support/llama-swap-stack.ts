/** A test stack whose simulator is llama-swap serving several models, for the tests of per-model behaviour. */
import { startStack } from './stack.js';
import type { Stack, StackOptions } from './stack.js';

/**
 * The simulator as llama-swap with `models` (two slots each, one loaded at a time) and the proxy left to find
 * out the kind (BACKEND_TYPE=auto). `options.sim` and `options.env` add to or override that.
 */
export function startLlamaSwapStack(models: readonly string[], options: StackOptions = {}): Promise<Stack> {
  return startStack({
    ...options,
    sim: { mode: 'llama-swap', models: models.map((id) => ({ id, nSlots: 2 })), ...options.sim },
    env: { BACKEND_TYPE: 'auto', ...options.env },
  });
}
