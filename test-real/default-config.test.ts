/**
 * llama-server started with its defaults (no `-np`): 4 slots on one unified KV buffer, and idle slots moved to its
 * 8 GiB RAM cache and cleared whenever a task starts. Alone, the server brings every conversation back from that
 * RAM cache. The proxy must never make it worse: in this configuration, pinning a request to a slot the server
 * has cleared skips the RAM-cache lookup, so every later turn would prefill from scratch.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { locateLlamaServer } from '../test/support/real-server.js';
import { nextTurn, openingOf, realChat, startRealStack } from '../test/support/real-stack.js';
import type { Message, RealChat, RealStack } from '../test/support/real-stack.js';

const where = locateLlamaServer();
const skip = 'skip' in where ? where.skip : false;

/** More conversations than the server's 4 slots, taking turns. */
const CONVERSATIONS = 5;
const TURNS = 3;

interface Turn {
  conversation: number;
  turn: number;
  previous?: RealChat;
  result: RealChat;
}

/** Round robin: turn 1 of every conversation, then turn 2 of every one, and so on. */
async function roundRobin(stack: RealStack, via: 'proxy' | 'direct'): Promise<Turn[]> {
  const convs: Array<{ messages: Message[]; last?: RealChat }> = [];
  for (let c = 0; c < CONVERSATIONS; c++) convs.push({ messages: openingOf(500 + c) });
  const turns: Turn[] = [];
  for (let turn = 1; turn <= TURNS; turn++) {
    for (let c = 0; c < CONVERSATIONS; c++) {
      const conv = convs[c]!;
      if (conv.last) conv.messages = nextTurn(conv.messages, conv.last.content, 600 + c * 10 + turn);
      const result = await realChat(stack, via, conv.messages);
      turns.push({ conversation: c, turn, ...(conv.last && { previous: conv.last }), result });
      conv.last = result;
    }
  }
  return turns;
}

/** The later turns that reused less than the whole previous prompt. */
function poorReuse(turns: readonly Turn[]): string[] {
  return turns
    .filter((t) => t.previous && t.result.timings.cache_n < t.previous.promptTokens)
    .map(
      (t) =>
        `conversation ${t.conversation} turn ${t.turn}: cache_n ${t.result.timings.cache_n} of ${t.previous!.promptTokens}` +
        (t.result.line.decision ? ` (${t.result.line.decision})` : ''),
    );
}

function prefilled(turns: readonly Turn[]): number {
  return turns.reduce((sum, t) => sum + t.result.timings.prompt_n, 0);
}

describe(
  'llama-server with its default configuration (no -np: 4 unified slots, idle slots cached in RAM)',
  { skip },
  () => {
    let direct: Turn[];
    let proxied: Turn[];
    before(async () => {
      if ('skip' in where) return;
      // A fresh server for each run, so the second does not find the first one's prompts in the RAM cache.
      for (const via of ['direct', 'proxy'] as const) {
        const stack = await startRealStack(where, { server: { slots: 'auto' } });
        try {
          const turns = await roundRobin(stack, via);
          if (via === 'direct') direct = turns;
          else proxied = turns;
        } finally {
          await stack.close();
        }
      }
    });

    it('alone, the server brings every later turn back from its RAM cache', () => {
      assert.deepEqual(poorReuse(direct), []);
    });

    it('through the proxy every later turn reuses its conversation as well, and nothing is prefilled beyond the server alone', () => {
      assert.deepEqual(poorReuse(proxied), []);
      assert.ok(
        prefilled(proxied) <= 1.03 * prefilled(direct),
        `prefilled ${prefilled(proxied)} tokens, the server alone ${prefilled(direct)}`,
      );
    });
  },
);
