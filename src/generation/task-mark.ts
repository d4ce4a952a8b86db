/**
 * A mark that tells a task sent without a pin apart on `GET /slots`: a sampling seed of the proxy's choosing.
 *
 * On a server that clears its idle slots (llama-server's default configuration) a big request is often sent without
 * a pin, so that the server's own RAM-cache lookup can serve it, and the proxy then looks for the slot the server
 * chose. Without a mark it can tell only which task is new since a look before the launch, and how big it is: a
 * look the launch waits for, and no answer at all when another client's task started at the same moment. `GET /slots`
 * shows each slot's last task's `params`, its seed included, while it runs and after it ends (through an idle-slot
 * clearing too), so a seed the proxy chose names the task's slot at the first look that shows it.
 *
 * Sampling stays as the client asked: without a seed of its own the server draws a random one for every task, as
 * the mark is; a client that sets `seed` keeps it, and its task goes unmarked. 4294967295 is the server's "draw a
 * random seed", never a mark.
 */
import { randomInt } from 'node:crypto';

/** A fresh mark: a seed in [0, 4294967294]. */
export function newTaskMark(): number {
  return randomInt(0, RANDOM_SEED);
}

/** llama-server's default seed (LLAMA_DEFAULT_SEED): a random seed per task. */
const RANDOM_SEED = 0xffffffff;
