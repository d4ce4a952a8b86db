/**
 * The proxy in front of a real llama-server started with `--api-key`: with BACKEND_API_KEY the proxy's own calls
 * (probes, chats, slot saves and restores) are accepted, and with API_KEYS its clients need their own key. Before
 * BACKEND_API_KEY existed, every chat and slot call through the proxy got the server's 401.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { exists, keyOf, metaPath } from '../test/support/cache.js';
import { eventually } from '../test/support/deadline.js';
import { locateLlamaServer } from '../test/support/real-server.js';
import { nextTurn, openingOf, REAL_MODEL, realChat, startRealStack } from '../test/support/real-stack.js';
import type { RealStack } from '../test/support/real-stack.js';

const where = locateLlamaServer();
const skip = 'skip' in where ? where.skip : false;
const SERVER_KEY = 'sk-server-5d1c';
const CLIENT_KEY = 'sk-client-a03e';

describe('a real llama-server with --api-key, BACKEND_API_KEY and API_KEYS set', { skip }, () => {
  let stack: RealStack;
  /** The stack as a client holding the proxy's key sees it. */
  let keyed: RealStack;
  before(async () => {
    if ('skip' in where) return;
    stack = await startRealStack(where, {
      server: { slots: 2, args: ['--cache-ram', '0', '--api-key', SERVER_KEY] },
      // No write-behind: A is saved when C evicts it, and C always takes the least recently used slot (A's).
      env: { BACKEND_API_KEY: SERVER_KEY, API_KEYS: CLIENT_KEY, IDLE_SAVE_SECONDS: '0' },
    });
    keyed = {
      ...stack,
      openai: new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 30_000 }),
    };
  });
  after(() => stack?.close());

  it("the server refuses a call without its key, and the proxy refuses a client without the proxy's key", async () => {
    const direct = await fetch(`${stack.server.url}/props`, { signal: AbortSignal.timeout(5000) });
    assert.equal(direct.status, 401);
    await assert.rejects(
      stack.openai.chat.completions.create({
        model: REAL_MODEL,
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 2,
      }),
      OpenAI.AuthenticationError,
    );
  });

  it('chat, eviction save and restore all work through the proxy', async () => {
    const a = openingOf(201);
    const a1 = await realChat(keyed, 'proxy', a);
    assert.equal(a1.line.status, 200);
    await realChat(keyed, 'proxy', openingOf(202));
    await realChat(keyed, 'proxy', openingOf(203)); // two slots, three conversations: A is saved, then evicted
    const path = metaPath(stack.metaDir, keyOf(a));
    await eventually(() => exists(path), 5000, "A's meta file");
    assert.equal(
      (JSON.parse(await readFile(path, 'utf8')) as { n_tokens: number }).n_tokens,
      a1.slotTokens,
      'the save holds A',
    );

    const a2 = await realChat(keyed, 'proxy', nextTurn(a, a1.content, 204), { stream: true });
    assert.equal(a2.line.decision, 'restore');
    assert.equal(a2.line.restore.ok, true);
    assert.ok(
      a2.timings.cache_n >= a1.promptTokens,
      `A reused ${a2.timings.cache_n} of ${a1.promptTokens} tokens after the restore`,
    );
  });
});
