/**
 * Small prompts first, on a real llama-server: a small prompt sent just before a big one gets its first token
 * before the big one's prefill, where the server alone would take both up in one batch (small-prompts-first.ts).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { parseProm, valueOf } from '../test/support/prom-text.js';
import { api } from '../test/support/proxycache-api.js';
import { locateLlamaServer } from '../test/support/real-server.js';
import { REAL_MODEL, openingOf, startRealStack } from '../test/support/real-stack.js';
import type { Message, RealStack } from '../test/support/real-stack.js';
import { words } from '../test/support/text.js';

const where = locateLlamaServer();
const skip = 'skip' in where ? where.skip : false;

/** A streamed chat: when its first chunk came (`performance.now()`) and the server's timings. */
async function timedStream(
  openai: OpenAI,
  messages: Message[],
  maxTokens: number,
): Promise<{ firstChunk: number; promptMs: number }> {
  const stream = await openai.chat.completions.create({
    model: REAL_MODEL,
    messages,
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
  });
  let firstChunk = 0;
  let promptMs: number | undefined;
  for await (const chunk of stream) {
    firstChunk ||= performance.now();
    promptMs = (chunk as unknown as { timings?: { prompt_ms: number } }).timings?.prompt_ms ?? promptMs;
  }
  if (promptMs === undefined) throw new Error('the answer carried no timings');
  return { firstChunk, promptMs };
}

/** A server that keeps its idle slots (the big request waits with its slot ready), and one that clears them (before
 * the launch gate). */
const CONFIGURATIONS = [
  { name: '-np 3, no RAM cache', server: { slots: 3, args: ['--cache-ram', '0'] } },
  { name: 'defaults (no -np: idle slots cleared)', server: { slots: 'auto' as const } },
];

for (const configuration of CONFIGURATIONS) {
  describe(`small prompts first, on a real llama-server (${configuration.name})`, { skip }, () => {
    let stack: RealStack;
    before(async () => {
      if ('skip' in where) return;
      stack = await startRealStack(where, { server: configuration.server });
    });
    after(() => stack?.close());

    it('a small prompt sent just before a big one gets its first token before the big one is prefilled, though the server was busy', async () => {
      for (let trial = 0; trial < 3; trial++) {
        // A prompt being prefilled keeps the server's loop busy for a whole batch: the two prompts sent meanwhile
        // reach it together and, sent on, would be taken up in one batch when it is done.
        const busy = timedStream(stack.openai, openingOf(300 + trial, 600), 4);
        await sleep(100);
        const mark = stack.logs.lines.length;
        const small = timedStream(stack.openai, [{ role: 'user', content: words(20, 100 + trial) }], 4);
        await sleep(5);
        const big = timedStream(stack.openai, openingOf(200 + trial, 2000), 4);
        const [s, b] = await Promise.all([small, big, busy]);
        assert.ok(
          s.firstChunk < b.firstChunk - b.promptMs / 2,
          `trial ${trial}: the small prompt's first token came ${Math.round(b.firstChunk - s.firstChunk)} ms before ` +
            `the big one's, whose prefill took ${Math.round(b.promptMs)} ms`,
        );
        const bigLine = await stack.logs.waitFor(
          (l) => l.msg === 'chat' && l.words === 2000 && stack.logs.lines.indexOf(l) >= mark,
          10_000,
          "the big request's chat line",
        );
        assert.ok(
          Number(bigLine.small_first_ms) > 0,
          `trial ${trial}: the big request's line says it let the small one start`,
        );
      }
      // Visible to an operator: the metric counts the waits, the status API shows each.
      const metrics = parseProm((await api(stack.url, 'GET', '/metrics')).body as string);
      const waits = valueOf(metrics, 'proxycache_small_first_wait_seconds_count');
      assert.ok(waits >= 3, `proxycache_small_first_wait_seconds_count ${waits}`);
      const listed = (await api(stack.url, 'GET', '/proxycache/requests?limit=50')).body as {
        requests: Array<{ small_first_ms?: number }>;
      };
      assert.ok(listed.requests.filter((r) => (r.small_first_ms ?? 0) > 0).length >= 3);
    });
  });
}
