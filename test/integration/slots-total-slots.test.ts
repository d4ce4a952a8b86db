/**
 * N_SLOTS larger than the server's real slot count: slot ids wrap on llama-server (id 2 of a 2-slot server is
 * slot 0), so two "slots" of the proxy would share one real slot. The proxy checks `/props` total_slots, warns,
 * and never sends an id_slot at or beyond it, not even for the first requests after start-up.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { withDeadline } from '../support/deadline.js';
import { nthChatLine } from '../support/log-lines.js';
import { decodeOnlyCost, eventsOf } from '../support/sim-helpers.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';
import type { TappedStack } from '../support/tapped-stack.js';

describe('N_SLOTS=4 against a server with total_slots 2', () => {
  let tapped: TappedStack | undefined;
  afterEach(async () => {
    if (tapped) await closeTappedStack(tapped);
    tapped = undefined;
  });

  for (const type of ['auto', 'llama-server']) {
    it(`BACKEND_TYPE=${type}: warns, and 4 concurrent requests right after start-up use slots 0 and 1 only`, async () => {
      tapped = await startTappedStack({
        sim: { models: [{ id: 'tiny', nSlots: 2 }], cost: decodeOnlyCost(10) },
        env: { N_SLOTS: '4', BACKEND_TYPE: type },
      });
      const { stack, tap, logMark } = tapped;
      const from = stack.sim.events.length;
      const chatsSent = tap.requests.length;

      // At once, as a busy IDE does after a restart: each holds its slot for ~50 ms.
      const replies = await withDeadline(
        Promise.all(
          [1, 2, 3, 4].map((i) =>
            stack.openai.chat.completions.create({
              model: 'tiny',
              messages: [{ role: 'user', content: `question ${i}` }],
              max_tokens: 5,
            }),
          ),
        ),
        3000,
        'four concurrent chats',
      );
      assert.equal(replies.length, 4);
      await nthChatLine(stack.logs, 4);

      // The tapped proxy's own warning (the first proxy, straight at the simulator, had N_SLOTS=4 too).
      const warning = stack.logs.lines
        .slice(logMark)
        .find((l) => l.level === 'warn' && l.total_slots === 2 && l.backend === tap.url);
      assert.ok(warning, 'a warning names the real slot count');
      assert.equal(warning.configured, 4);
      const sent = tap.requests
        .slice(chatsSent)
        .filter((r) => r.path === '/v1/chat/completions')
        .map((r) => r.body.id_slot as number);
      assert.equal(sent.length, 4);
      assert.ok(
        sent.every((id) => id === 0 || id === 1),
        `id_slot sent: ${sent.join(', ')}`,
      );
      assert.deepEqual(
        stack.logs
          .withMsg('chat')
          .slice(-4)
          .map((l) => l.slot)
          .sort(),
        [0, 0, 1, 1],
      );
      assert.equal(eventsOf(stack.sim, 'chat', from).length, 4);
    });
  }
});
