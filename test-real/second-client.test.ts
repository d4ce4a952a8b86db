/**
 * Another client uses the real llama-server behind the proxy's back and overwrites a slot the proxy believes holds
 * one of its conversations. The proxy must not write that client's tokens under its conversation's key (a save
 * whose n_saved does not match what the proxy believes the slot holds is not trusted), must never restore the
 * wrong content, and should notice the change from GET /slots before it pins a request to that slot.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { afterEach, describe, it } from 'node:test';
import { exists, keyOf, metaPath } from '../test/support/cache.js';
import { locateLlamaServer } from '../test/support/real-server.js';
import { directSlotAction, nextTurn, openingOf, realChat, realStackPerTest } from '../test/support/real-stack.js';
import { words } from '../test/support/text.js';

const where = locateLlamaServer();
const skip = 'skip' in where ? where.skip : false;

describe("a second client uses the real llama-server behind the proxy's back (-np 2, no RAM cache)", { skip }, () => {
  const stacks = realStackPerTest(where);
  afterEach(() => stacks.close());

  it("never keeps a save of the other client's tokens under a conversation's key, and never restores it", async () => {
    const s = await stacks.start();
    const a = openingOf(201);
    const a1 = await realChat(s, 'proxy', a);
    // The other client's conversation, of another length, pinned to A's slot.
    const other = await realChat(s, 'direct', openingOf(202, 400), { extra: { id_slot: a1.line.slot } });
    assert.notEqual(other.slotTokens, a1.slotTokens);
    // Two more conversations through the proxy: A's slot is evicted (and saved, if the proxy still thinks it holds A).
    await realChat(s, 'proxy', openingOf(203));
    await realChat(s, 'proxy', openingOf(204));

    const meta = metaPath(s.metaDir, keyOf(a));
    if (await exists(meta)) {
      const saved = JSON.parse(await readFile(meta, 'utf8')) as { n_tokens?: number };
      assert.equal(
        saved.n_tokens,
        a1.slotTokens,
        "an entry under A's key holds A (prompt and reply), not the other client's tokens",
      );
    }
    const a2 = await realChat(s, 'proxy', nextTurn(a, a1.content, 205));
    if (a2.line.decision === 'restore' && a2.line.restore?.ok) {
      assert.ok(
        a2.timings.cache_n >= a1.promptTokens,
        `a restore under A's key gave A's tokens back (cache_n ${a2.timings.cache_n})`,
      );
    }
    // Whatever file is left under A's key holds A: restored directly, it has A's token count.
    if ((await exists(`${s.cacheDir}/${keyOf(a)}`)) && (await exists(meta))) {
      const res = await directSlotAction(s.server, 0, 'restore', { filename: keyOf(a) });
      assert.equal(res.body.n_restored, a1.slotTokens);
    }
  });

  it('checks GET /slots before trusting a slot: a conversation whose slot was overwritten comes back from disk', async () => {
    // The Python proxy's policy: A is on disk as soon as it was answered.
    const s = await stacks.start({ SAVE_POLICY: 'always' });
    const a = openingOf(211);
    const a1 = await realChat(s, 'proxy', a);
    assert.equal(a1.line.save?.ok, true);
    await realChat(s, 'direct', openingOf(212, 400), { extra: { id_slot: a1.line.slot } });

    const a2 = await realChat(s, 'proxy', nextTurn(a, a1.content, 213));
    assert.ok(
      a2.timings.cache_n >= a1.promptTokens,
      `A reused ${a2.timings.cache_n} of ${a1.promptTokens} tokens (decision ${a2.line.decision})`,
    );
  });

  // The proxy converts /v1/messages to a pinned chat completion (llama-server's own route ignores id_slot).
  it('an Anthropic /v1/messages request through the proxy does not cost a conversation its slot', async () => {
    const s = await stacks.start();
    const a = openingOf(221);
    const b = openingOf(222);
    const a1 = await realChat(s, 'proxy', a);
    const b1 = await realChat(s, 'proxy', b);
    const res = await fetch(`${s.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'tiny',
        max_tokens: 8,
        temperature: 0,
        messages: [{ role: 'user', content: words(300, 223) }],
      }),
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { type?: string }).type, 'message');

    const a2 = await realChat(s, 'proxy', nextTurn(a, a1.content, 224));
    const b2 = await realChat(s, 'proxy', nextTurn(b, b1.content, 225));
    assert.ok(
      a2.timings.cache_n >= a1.promptTokens,
      `A reused ${a2.timings.cache_n} of ${a1.promptTokens} (decision ${a2.line.decision})`,
    );
    assert.ok(
      b2.timings.cache_n >= b1.promptTokens,
      `B reused ${b2.timings.cache_n} of ${b1.promptTokens} (decision ${b2.line.decision})`,
    );
  });

  it("a /v1/messages answer through the proxy equals llama-server's own, as JSON and as a stream", async () => {
    const s = await stacks.start();
    const body = {
      model: 'tiny',
      max_tokens: 8,
      temperature: 0,
      system: [
        { type: 'text', text: 'x-anthropic-billing-header: cc_version=1; cch=ab12c;' },
        { type: 'text', text: words(40, 231), cache_control: { type: 'ephemeral' } },
      ],
      messages: [
        { role: 'user', content: [{ type: 'text', text: words(20, 232) }] },
        { role: 'system', content: words(10, 233) },
      ],
    };
    const post = async (base: string, extra: Record<string, unknown> = {}) => {
      const res = await fetch(`${base}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...body, ...extra }),
        signal: AbortSignal.timeout(30_000),
      });
      assert.equal(res.status, 200);
      return res.text();
    };
    const own = JSON.parse(await post(s.server.url)) as {
      content: unknown;
      stop_reason: string;
      usage: { output_tokens: number };
    };
    const ours = JSON.parse(await post(s.url)) as typeof own;
    assert.deepEqual(ours.content, own.content);
    assert.equal(ours.stop_reason, own.stop_reason);
    assert.equal(ours.usage.output_tokens, own.usage.output_tokens);
    const text = (sse: string) =>
      [...sse.matchAll(/"text_delta","text":("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1]!) as string).join('');
    const eventsOf = (sse: string) =>
      [...sse.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]).filter((e) => e !== 'ping');
    const ownStream = await post(s.server.url, { stream: true });
    const ourStream = await post(s.url, { stream: true });
    assert.equal(text(ourStream), text(ownStream));
    assert.deepEqual(eventsOf(ourStream), eventsOf(ownStream));
  });
});
