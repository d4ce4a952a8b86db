/**
 * Side requests don't evict the work (issue 8, item 4). Qwen Code sends, after a turn, a big memory-extraction request
 * with its own system prompt: it shares no prefix with anything. It used to land on the least recently used slot,
 * often another agent's live conversation, which then had to be restored on its next turn; now it overwrites the
 * slot of an earlier one-off (content no later request continued) and the conversation stays resident.
 * See chooseVictim in src/slots/slot-planner.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { chat, continued, keyOf, logLineAfter, opening } from '../support/cache.js';
import { eventually } from '../support/deadline.js';
import { nthChatLine } from '../support/log-lines.js';
import { parseProm, valueOf } from '../support/prom-text.js';
import type { Sample } from '../support/prom-text.js';
import { decodeOnlyCost, eventsOf } from '../support/sim-helpers.js';
import { startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';
import type { TappedStack } from '../support/tapped-stack.js';
import { words } from '../support/text.js';

type Message = OpenAI.Chat.Completions.ChatCompletionMessageParam;

for (const policy of ['always', 'smart']) {
  describe(`a big side request sharing no prefix (SAVE_POLICY=${policy})`, () => {
    let stack: Stack;
    afterEach(() => closeStack(stack));

    it('overwrites the slot of an earlier one-off, not the less recently used live conversation', async () => {
      stack = await startStack({
        sim: { models: [{ id: 'tiny', nSlots: 2 }], cost: decodeOnlyCost(1) },
        env: { SAVE_POLICY: policy },
      });
      const ask = async (messages: Message[]) => {
        const stream = await stack.openai.chat.completions.create({
          model: 'tiny',
          messages,
          max_tokens: 4,
          stream: true,
        });
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
        return text;
      };
      // The agent's conversation: two turns, so it has been continued (live).
      const agent: Message[] = [
        { role: 'system', content: words(80, 1) },
        { role: 'user', content: words(20, 2) },
      ];
      agent.push({ role: 'assistant', content: await ask(agent) }, { role: 'user', content: words(20, 3) });
      agent.push({ role: 'assistant', content: await ask(agent) });
      // An earlier one-off (the previous memory extraction) on the other slot: the agent's slot is now the LRU one.
      await ask([
        { role: 'system', content: words(80, 4) },
        { role: 'user', content: words(30, 5) },
      ]);
      const [first, , oneOff] = await Promise.all([1, 2, 3].map((n) => nthChatLine(stack.logs, n)));
      assert.notEqual(oneOff!.slot, first!.slot, 'the one-off took the empty slot');
      const agentSlot = first!.slot as number;
      const agentTokens = stack.sim.slotTokens('tiny', agentSlot)!.length;

      // The memory extraction: its own system prompt, the history as text, no prefix shared with anything.
      await ask([
        { role: 'system', content: words(90, 6) },
        { role: 'user', content: words(40, 7) },
      ]);
      const side = await nthChatLine(stack.logs, 4);
      assert.equal(side.decision, 'cold');
      assert.equal(side.slot, oneOff!.slot, "the side request took the one-off's slot");
      assert.equal(
        stack.sim.slotTokens('tiny', agentSlot)!.length,
        agentTokens,
        "the agent's slot still holds its conversation",
      );

      // The agent's next turn finds its conversation where it left it: no restore, only the new message prefilled.
      const restoresBefore = eventsOf(stack.sim, 'restore').length;
      agent.push({ role: 'user', content: words(20, 8) });
      await ask(agent);
      const next = await nthChatLine(stack.logs, 5);
      assert.equal(next.decision, 'resident');
      assert.equal(next.slot, agentSlot);
      assert.equal(eventsOf(stack.sim, 'restore').length, restoresBefore, 'nothing restored');
      assert.ok((next.cache_n as number) >= agentTokens - 1, `reused ${String(next.cache_n)} of ${agentTokens} tokens`);
    });
  });
}

describe('a side request while a one-off is being saved in the background (SAVE_POLICY=smart)', () => {
  let tapped: TappedStack | undefined;
  afterEach(async () => {
    if (tapped) await closeTappedStack(tapped);
    tapped = undefined;
  });

  it("waits for that save and takes the one-off's slot, not the agent's live conversation", async () => {
    tapped = await startTappedStack({
      env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '0.4', SAVE_MIN_NEW_TOKENS: '0' },
    });
    const { stack: s, tap } = tapped;
    const agent = opening(4101);
    const a1 = await chat(s, agent);
    const agent2 = continued(agent, a1.content, 4102);
    const mark = s.logs.lines.length;
    const a2 = await chat(s, agent2); // continued: a live conversation
    await logLineAfter(s.logs, mark, 'saved after answer', (l) => l.key === keyOf(agent2).slice(0, 16));

    // The memory extraction before it (a one-off) is answered on the other slot; its write-behind save is held.
    const oneOff = opening(4103);
    const oneOffSave = tap.hold((r) => r.path.includes('action=save') && r.body?.filename === keyOf(oneOff));
    const extraction = await chat(s, oneOff);
    assert.notEqual(extraction.line.slot, a2.line.slot);
    await oneOffSave.arrived;

    // An IDE completion (big, no prefix shared) comes during that save: it waits rather than push the agent out.
    const completion = chat(s, opening(4104));
    await eventually(
      async () => valueOf(await metrics(s), 'proxycache_requests_waiting_for_slot') === 1 || undefined,
      5000,
      'the completion waiting for a slot',
    );
    oneOffSave.release();
    const side = await completion;
    assert.equal(side.line.slot, extraction.line.slot, JSON.stringify(side.line));
    assert.equal(side.line.evict_save, undefined, 'the one-off was on disk by then');
    const a3 = await chat(s, continued(agent2, a2.content, 4105));
    assert.equal(a3.line.decision, 'resident', JSON.stringify(a3.line));
    assert.equal(a3.line.slot, a2.line.slot);
  });
});

async function metrics(stack: Stack): Promise<Sample[]> {
  return parseProm(await (await fetch(`${stack.url}/metrics`)).text());
}
