/**
 * Does this llama-server clear its idle slots when a task starts (its default configuration: no `-np`, unified KV
 * buffer, `--cache-idle-slots`)? Two one-token chats, pinned to slots 0 and 1, then `GET /slots`: if slot 0 shows
 * an empty KV after slot 1 ran, it does. Costs a few milliseconds at start-up and saves a conversation per slot
 * that would otherwise be lost while the proxy finds out from the traffic.
 */
import type { LlamaClient } from './llama-client.js';
import { readText } from './llama-client.js';
import { parseSlots } from '../slots/slot-check.js';

const PROBE_TIMEOUT_MS = 5000;

/** True: clears idle slots; false: keeps them; undefined: could not tell (no `/slots`, an error, fewer slots). */
export async function probeIdleSlotClearing(client: LlamaClient, model: string): Promise<boolean | undefined> {
  try {
    for (const slot of [0, 1]) {
      const body = JSON.stringify({
        model,
        messages: [{ role: 'user', content: 'probe' }],
        max_tokens: 1,
        id_slot: slot,
        cache_prompt: true,
      });
      const res = await client.chat(body, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS), stream: false });
      await readText(res.body);
      if (res.status !== 200) return undefined;
    }
    const observed = parseSlots(await client.slots(model, PROBE_TIMEOUT_MS));
    const first = observed?.get(0);
    if (typeof first !== 'number' || !observed?.get(1)) return undefined;
    return first === 0;
  } catch {
    return undefined;
  }
}
