/**
 * llama-server (and router mode) close the connection after every streamed answer although they advertise
 * keep-alive; the simulator drops a request sent on that connection. The save that follows a streamed big request
 * must not be lost to it (the client never reuses a stream's connection, and retries slot actions once).
 */
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { nthChatLine } from '../support/log-lines.js';
import { eventsOf } from '../support/sim-helpers.js';
import { startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';
import { words } from '../support/text.js';
import type { SimOptions } from '../../src/sim/index.js';

describe('a streamed big request, then its save', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  const cases: Array<{ mode: SimOptions['mode']; model: string }> = [
    { mode: 'llama-server', model: 'tiny' },
    { mode: 'router', model: 'a' },
  ];
  for (const { mode, model } of cases) {
    it(`${mode}: the save succeeds and its meta is written, turn after turn`, async () => {
      const s = (stack = await startStack({ sim: { mode, models: [{ id: model, nSlots: 2 }] } }));
      const messages: Array<{ role: 'user' | 'assistant'; content: string }> = [
        { role: 'user', content: words(60, 5) },
      ];
      for (let turn = 1; turn <= 3; turn++) {
        const stream = await s.openai.chat.completions.create({ model, messages, max_tokens: 3, stream: true });
        let reply = '';
        for await (const chunk of stream) reply += chunk.choices[0]?.delta?.content ?? '';
        const line = await nthChatLine(s.logs, turn);
        assert.equal(line.status, 200);
        assert.equal((line.save as { ok: boolean }).ok, true, `turn ${turn}: ${JSON.stringify(line.save)}`);
        const save = eventsOf(s.sim, 'save').at(-1)!;
        assert.equal(save.ok, true);
        await access(join(s.metaDir, `${save.filename}.meta.json`));
        messages.push({ role: 'assistant', content: reply }, { role: 'user', content: `and then ${turn}?` });
      }
      assert.equal(eventsOf(s.sim, 'save').filter((e) => e.ok).length, 3);
    });
  }

  it('llama-server, SAVE_POLICY=smart: the save of an evicted conversation, sent right after a stream, succeeds', async () => {
    // With one slot and no save after the reply, the next big request must first save what the stream left.
    const s = (stack = await startStack({
      sim: { models: [{ id: 'tiny', nSlots: 1 }] },
      env: { N_SLOTS: '1', SAVE_POLICY: 'smart' },
    }));
    for (let turn = 1; turn <= 3; turn++) {
      const stream = await s.openai.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: words(60, 40 + turn) }],
        max_tokens: 3,
        stream: true,
      });
      for await (const chunk of stream) void chunk;
    }
    const lines = await Promise.all([1, 2, 3].map((n) => nthChatLine(s.logs, n)));
    for (const line of lines.slice(1)) {
      assert.equal((line.evict_save as { ok: boolean } | undefined)?.ok, true, JSON.stringify(line.evict_save));
    }
    const saves = eventsOf(s.sim, 'save');
    assert.equal(saves.length, 2);
    for (const save of saves) await access(join(s.metaDir, `${save.filename}.meta.json`));
  });
});
