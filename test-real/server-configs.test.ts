/**
 * Every llama-server configuration a user may run (issue 7, item 6): the proxy finds out how the server treats idle
 * slots and must never make it worse than the same server alone.
 *
 * The default configuration (no `-np`: 4 slots on one unified KV buffer, idle slots moved to its 8 GiB RAM cache
 * and cleared whenever a task starts) is the hard one: alone, the server brings every conversation back from that
 * RAM cache, while a request pinned to a slot the server has cleared skips the RAM-cache lookup.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { locateLlamaServer } from '../test/support/real-server.js';
import type { RealServerOptions } from '../test/support/real-server.js';
import { nextTurn, openingOf, realChat, startRealStack } from '../test/support/real-stack.js';
import { words } from '../test/support/text.js';
import type { Message, RealChat, RealStack } from '../test/support/real-stack.js';

const where = locateLlamaServer();
const skip = 'skip' in where ? where.skip : false;

/** More conversations than the server's slots, taking turns. */
const CONVERSATIONS = 5;
const TURNS = 3;

interface Configuration {
  name: string;
  server: Pick<RealServerOptions, 'slots' | 'args'>;
  /** Whether the server clears its idle slots when a task starts (what the proxy must find out). */
  clearsIdleSlots: boolean;
  /** Whether the server alone brings every later turn back (its RAM cache holds the whole working set). */
  aloneReusesAll: boolean;
}

const CONFIGURATIONS: Configuration[] = [
  { name: 'defaults (no -np)', server: { slots: 'auto' }, clearsIdleSlots: true, aloneReusesAll: true },
  {
    name: 'no -np, --no-cache-idle-slots',
    server: { slots: 'auto', args: ['--no-cache-idle-slots'] },
    clearsIdleSlots: false,
    aloneReusesAll: true,
  },
  {
    name: 'no -np, --cache-ram 0',
    server: { slots: 'auto', args: ['--cache-ram', '0'] },
    clearsIdleSlots: false,
    aloneReusesAll: false,
  },
  {
    name: '-np 2 --kv-unified',
    server: { slots: 2, args: ['--kv-unified'] },
    clearsIdleSlots: true,
    aloneReusesAll: true,
  },
  { name: '-np 2', server: { slots: 2 }, clearsIdleSlots: false, aloneReusesAll: true },
];

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

/** What the proxy's status API says of the backend's idle slots. */
async function clearsIdleSlots(stack: RealStack): Promise<unknown> {
  const res = await fetch(`${stack.url}/proxycache/status`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { backends: Array<{ clears_idle_slots: unknown }> };
  return body.backends[0]?.clears_idle_slots;
}

for (const configuration of CONFIGURATIONS) {
  describe(`llama-server ${configuration.name}`, { skip }, () => {
    let direct: Turn[];
    let proxied: Turn[];
    let detected: unknown;
    before(async () => {
      if ('skip' in where) return;
      // A fresh server for each run, so the second does not find the first one's prompts in the RAM cache.
      for (const via of ['direct', 'proxy'] as const) {
        const stack = await startRealStack(where, { server: configuration.server });
        try {
          const turns = await roundRobin(stack, via);
          if (via === 'direct') direct = turns;
          else {
            proxied = turns;
            detected = await clearsIdleSlots(stack);
          }
        } finally {
          await stack.close();
        }
      }
    });

    it(`the proxy finds that the server ${configuration.clearsIdleSlots ? 'clears' : 'keeps'} idle slots`, () => {
      assert.equal(detected, configuration.clearsIdleSlots);
    });

    if (configuration.aloneReusesAll) {
      it('alone, the server brings every later turn back', () => {
        assert.deepEqual(poorReuse(direct), []);
      });
    } else {
      it('alone, the server prefills evicted conversations again, which the proxy restores from disk', () => {
        assert.notDeepEqual(poorReuse(direct), []);
        assert.ok(
          prefilled(proxied) < 0.8 * prefilled(direct),
          `prefilled ${prefilled(proxied)} tokens, the server alone ${prefilled(direct)}`,
        );
      });
    }

    if (configuration.clearsIdleSlots) {
      it("later turns come back from the server's RAM cache (disk behind it): none is restored from disk", () => {
        const decisions = proxied.filter((t) => t.previous).map((t) => t.result.line.decision);
        // Sent for the RAM cache, or resident; `cold` where a rescue had just taken the conversation from the RAM
        // cache to bring it to disk (neither tier known to hold it as the request was planned): sent without a pin
        // all the same, and the server found it (the reuse is checked below).
        assert.ok(
          decisions.every((d) => d === 'server_cache' || d === 'resident' || d === 'cold'),
          JSON.stringify(decisions),
        );
        assert.ok(
          decisions.filter((d) => d === 'server_cache').length >= decisions.length / 2,
          JSON.stringify(decisions),
        );
      });
    }

    it('through the proxy every later turn reuses its conversation, and nothing is prefilled beyond the server alone', () => {
      assert.deepEqual(poorReuse(proxied), []);
      assert.ok(
        prefilled(proxied) <= 1.03 * prefilled(direct),
        `prefilled ${prefilled(proxied)} tokens, the server alone ${prefilled(direct)}`,
      );
    });
  });
}

describe('llama-server -np 2: its RAM cache in front of the disk, reached by pins', { skip }, () => {
  it('an answer pushed out of its slot before it was saved comes back whole from the RAM cache, and reaches the disk within the loss window', async () => {
    if ('skip' in where) return;
    // A loss window long enough for the four requests below on a slow machine: a rescue of `a` before its second turn
    // would bring it back into a slot (resident, not from the RAM cache).
    const stack = await startRealStack(where, { server: { slots: 2 }, env: { IDLE_SAVE_SECONDS: '6' } });
    try {
      await realChat(stack, 'proxy', openingOf(801));
      // Its save after the answer tells the proxy the size of a token's state.
      await stack.logs.waitFor((l) => l.msg === 'saved after answer', 10_000, 'a save after the answer');
      // Back to back, before any idle moment: a goes out for c unsaved, then comes back on b's slot.
      const a = openingOf(802);
      const a1 = await realChat(stack, 'proxy', a);
      const b = openingOf(803);
      const b1 = await realChat(stack, 'proxy', b);
      const c1 = await realChat(stack, 'proxy', openingOf(804));
      assert.equal(c1.line.slot, a1.line.slot, JSON.stringify(c1.line));
      assert.equal(c1.line.evict_save, undefined, JSON.stringify(c1.line));
      const a2 = await realChat(stack, 'proxy', nextTurn(a, a1.content, 805));
      assert.equal(a2.line.decision, 'server_cache', JSON.stringify(a2.line));
      assert.equal(a2.line.slot, b1.line.slot, JSON.stringify(a2.line));
      assert.ok(a2.timings.cache_n >= a1.promptTokens, JSON.stringify({ a1: a1.timings, a2: a2.timings }));
      // b, pushed out in its turn with no save, is brought back from the RAM cache and saved.
      const rescued = await stack.logs.waitFor(
        (l) => l.msg === "saved from the server's RAM cache" && l.key === b1.line.key,
        10_000,
        'b saved from the RAM cache',
      );
      assert.ok((rescued.cache_n as number) >= b1.promptTokens, JSON.stringify(rescued));
    } finally {
      await stack.close();
    }
  });
});

describe('llama-server defaults: another client clears a conversation before the proxy saved it', { skip }, () => {
  it("its next turn comes back whole from the server's RAM cache, and the turn after is resident where it landed", async () => {
    if ('skip' in where) return;
    // Write-behind far away: nothing is saved between turns, as when a task ends just before another starts.
    const stack = await startRealStack(where, { server: { slots: 'auto' }, env: { IDLE_SAVE_SECONDS: '600' } });
    try {
      const a1Messages = openingOf(701);
      const a1 = await realChat(stack, 'proxy', a1Messages);
      // The other client's task start moves every idle slot into the RAM cache and clears it, a1's among them.
      await realChat(stack, 'direct', openingOf(702));
      const a2Messages = nextTurn(a1Messages, a1.content, 703);
      const a2 = await realChat(stack, 'proxy', a2Messages);
      assert.equal(a2.line.decision, 'server_cache', JSON.stringify(a2.line));
      assert.ok(a2.timings.cache_n >= a1.promptTokens, JSON.stringify({ a1: a1.timings, a2: a2.timings }));
      const a3 = await realChat(stack, 'proxy', nextTurn(a2Messages, a2.content, 704));
      assert.equal(a3.line.decision, 'resident', JSON.stringify(a3.line));
      assert.equal(a3.line.slot, a2.line.slot);
      assert.ok(a3.timings.cache_n >= a2.promptTokens, JSON.stringify({ a2: a2.timings, a3: a3.timings }));
    } finally {
      await stack.close();
    }
  });
});

describe('llama-server defaults: POST /proxycache/save brings what only the RAM cache holds to disk', { skip }, () => {
  it('an answer cleared into the RAM cache unsaved is saved from there, as well as the slots', async () => {
    if ('skip' in where) return;
    const stack = await startRealStack(where, { server: { slots: 'auto' }, env: { IDLE_SAVE_SECONDS: '600' } });
    try {
      await realChat(stack, 'proxy', openingOf(811));
      // Its save after the answer tells the proxy the size of a token's state.
      await stack.logs.waitFor((l) => l.msg === 'saved after answer', 10_000, 'a save after the answer');
      // Back to back, before any idle moment: b's launch moves a into the RAM cache unsaved.
      const a1 = await realChat(stack, 'proxy', openingOf(812));
      const b1 = await realChat(stack, 'proxy', openingOf(813));
      const res = await fetch(`${stack.url}/proxycache/save`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
      const body = (await res.json()) as { saves: Array<{ key: string; ok: boolean }>; from_ram_cache: unknown };
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.deepEqual(body.from_ram_cache, { saved: 1, not_saved: 0 }, JSON.stringify(body));
      assert.ok(
        body.saves.some((save) => save.key === b1.line.key && save.ok),
        JSON.stringify(body),
      );
      const rescued = stack.logs.withMsg("saved from the server's RAM cache");
      assert.deepEqual(
        rescued.map((l) => l.key),
        [a1.line.key],
      );
      assert.ok((rescued[0]!.cache_n as number) >= a1.promptTokens, JSON.stringify(rescued[0]));
    } finally {
      await stack.close();
    }
  });
});

describe('llama-server defaults: small requests through the proxy', { skip }, () => {
  it('go unpinned, so the server brings back the instructions they share from its RAM cache', async () => {
    if ('skip' in where) return;
    const stack = await startRealStack(where, { server: { slots: 'auto' } });
    try {
      // Title requests, as chat clients send after each turn: the same instructions, a different conversation.
      const instructions = words(60, 711);
      const titleRequest = (seed: number): Message[] => [
        { role: 'system', content: instructions },
        { role: 'user', content: words(8, seed) },
      ];
      const first = await realChat(stack, 'proxy', titleRequest(712));
      assert.equal(first.line.decision, 'small', JSON.stringify(first.line));
      // A conversation's task start moves the idle slots into the RAM cache and clears them.
      await realChat(stack, 'proxy', openingOf(713));
      const second = await realChat(stack, 'proxy', titleRequest(714));
      assert.equal(second.line.decision, 'small', JSON.stringify(second.line));
      // Pinned to a cleared slot it would have reused nothing.
      assert.ok(second.timings.cache_n >= 50, JSON.stringify({ first: first.timings, second: second.timings }));
      // Nothing a small request leaves is saved: the proxy does not look for its slot, and its line names none.
      assert.equal(second.line.slot, undefined, JSON.stringify(second.line));
    } finally {
      await stack.close();
    }
  });
});

describe('llama-server defaults with a KV buffer that holds one conversation at a time (-c)', { skip }, () => {
  it('every later turn comes back whole: the idle slots are emptied (saved first) before a conversation loads', async () => {
    if ('skip' in where) return;
    // Alone, the server loads a conversation from its RAM cache before it clears its idle slots: the one that just
    // ran holds the cells the load needs, the load fails, and the turn is prefilled from scratch.
    await everyLaterTurnWhole({ slots: 'auto', args: ['-c', String(CELLS_FOR_ONE)] });
  });

  it('without a RAM cache (--cache-ram 0) too, once the proxy has seen the server clear a slot', async () => {
    if ('skip' in where) return;
    // There the server clears idle slots only when its buffer is full, unsaved (what the server alone loses too);
    // seen, the proxy saves before each launch, and makes room for its restores.
    await everyLaterTurnWhole(
      { slots: 'auto', args: ['-c', String(CELLS_FOR_ONE), '--cache-ram', '0'] },
      { SERVER_CACHE_RAM_MIB: '0' },
      1,
    );
  });

  /**
   * Three conversations taking turns for three more rounds: each turn of a round from `fromRound` on reuses the whole
   * conversation; no entry is dropped.
   */
  async function everyLaterTurnWhole(
    server: Pick<RealServerOptions, 'slots' | 'args'>,
    env: Record<string, string> = {},
    fromRound = 0,
  ) {
    if ('skip' in where) return;
    const stack = await startRealStack(where, { server, env });
    try {
      let turns: Array<{ messages: Message[]; answer: RealChat }> = [];
      for (const seed of [721, 722, 723]) {
        const messages = openingOf(seed);
        turns.push({ messages, answer: await realChat(stack, 'proxy', messages) });
      }
      assert.ok(turns[0]!.answer.slotTokens * 2 > CELLS_FOR_ONE, JSON.stringify(turns[0]!.answer.timings));
      for (const [r, round] of [730, 740, 750].entries()) {
        const next: typeof turns = [];
        for (const [i, turn] of turns.entries()) {
          const messages = nextTurn(turn.messages, turn.answer.content, round + i);
          const answer = await realChat(stack, 'proxy', messages);
          if (r >= fromRound)
            assert.ok(answer.timings.cache_n >= turn.answer.promptTokens, JSON.stringify({ line: answer.line }));
          next.push({ messages, answer });
        }
        turns = next;
      }
      const said = (start: string) => stack.logs.lines.filter((l) => String(l.msg).startsWith(start));
      assert.ok(said('emptied idle slots to make room').length >= 1);
      assert.deepEqual(said("the server's RAM cache no longer held"), []);
      assert.deepEqual(said('cache file cannot be restored'), []);
    } finally {
      await stack.close();
    }
  }
});

/** Cells for one conversation of the test's size and its next turns, not two (700 words make about 740 tokens). */
const CELLS_FOR_ONE = 1200;
