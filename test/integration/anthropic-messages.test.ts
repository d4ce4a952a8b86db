/**
 * The Anthropic Messages API through the proxy, driven by the official `@anthropic-ai/sdk`: answers (JSON and
 * streamed), a tool-use round trip, `?beta=true`, `HEAD /`, count_tokens, errors in Anthropic's shape, and the cache
 * behaviour: converted to chat completions, every request is pinned with `id_slot` (the simulator's `/v1/messages`,
 * like llama-server's, ignores it) and a conversation's next turn finds its slot resident or restores it.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { chat, chatEvents, logLineAfter, MODEL, opening } from '../support/cache.js';
import { postJson, startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { words } from '../support/text.js';

function client(stack: Stack, beta = false): Anthropic {
  return new Anthropic({
    baseURL: stack.url,
    apiKey: 'unused',
    maxRetries: 0,
    timeout: 20_000,
    ...(beta && { defaultQuery: { beta: 'true' } }),
  });
}

/**
 * Run one request and wait for the proxy's log line about it, written after its save and slot release, so that the
 * next request sees a settled state.
 */
async function logged<T>(stack: Stack, send: () => Promise<T>): Promise<{ answer: T; line: Record<string, any> }> {
  const mark = stack.logs.lines.length;
  const answer = await send();
  return { answer, line: await logLineAfter(stack.logs, mark, 'chat') };
}

/** A Claude-Code-like first turn: billing header and cache_control in `system`, a `role: system` message. */
function firstTurn(seed: number): Anthropic.MessageCreateParamsNonStreaming {
  return {
    model: MODEL,
    max_tokens: 8,
    system: [
      {
        type: 'text',
        text: `x-anthropic-billing-header: cc_version=2.1.197.6e2; cc_entrypoint=sdk-cli; cch=${seed.toString(16).padStart(5, '0').slice(-5)};`,
      },
      { type: 'text', text: words(64, seed), cache_control: { type: 'ephemeral' } },
    ],
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: words(16, seed + 1) },
          { type: 'text', text: words(8, seed + 2), cache_control: { type: 'ephemeral' } },
        ],
      },
      // Not in Anthropic's types, yet Claude Code sends it.
      { role: 'system' as 'user', content: words(12, seed + 3) },
    ],
  };
}

describe('Anthropic messages', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('messages.create answers a message with usage, pinned to the slot the proxy chose', async () => {
    stack = await startStack();
    const mark = stack.sim.events.length;
    const { answer: message, line } = await logged(stack, () => client(stack!).messages.create(firstTurn(11)));
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.equal(message.content[0]?.type, 'text');
    assert.ok((message.content[0] as Anthropic.TextBlock).text.length > 0);
    assert.equal(message.stop_reason, 'max_tokens');
    assert.equal(message.usage.output_tokens, 8);
    assert.ok(message.usage.input_tokens > 0);
    assert.equal(typeof message.usage.cache_read_input_tokens, 'number');
    const [event] = chatEvents(stack.sim, mark);
    assert.ok(event?.pinned, 'the backend got the request with id_slot');
    assert.equal(event.slot, line.slot);
    assert.equal(message.usage.cache_read_input_tokens, event.cache_n);
    assert.equal(message.usage.input_tokens, event.prompt_n);
  });

  it('a second turn (cache_control moved, new cch stamp) finds its slot resident: cache_read_input_tokens is the first prompt', async () => {
    stack = await startStack();
    const anthropic = client(stack);
    const first = firstTurn(21);
    const { answer: a } = await logged(stack, () => anthropic.messages.create(first));
    const reply = (a.content[0] as Anthropic.TextBlock).text;
    // Other conversations on the other slot in between.
    await chat(stack, opening(22));
    const system = first.system as Anthropic.TextBlockParam[];
    const second: Anthropic.MessageCreateParamsNonStreaming = {
      ...first,
      system: [
        { type: 'text', text: system[0]!.text.replace(/cch=\w{5};/, 'cch=9a9a9;') },
        { type: 'text', text: system[1]!.text },
      ],
      messages: [
        {
          role: 'user',
          content: (first.messages[0]!.content as Anthropic.TextBlockParam[]).map((b) => ({
            type: 'text' as const,
            text: b.text,
          })),
        },
        first.messages[1]!,
        { role: 'assistant', content: reply },
        { role: 'user', content: [{ type: 'text', text: words(6, 23), cache_control: { type: 'ephemeral' } }] },
      ],
    };
    const simMark = stack.sim.events.length;
    const { answer: b, line } = await logged(stack, () => anthropic.messages.stream(second).finalMessage());
    const firstPrompt = a.usage.input_tokens + (a.usage.cache_read_input_tokens ?? 0);
    assert.ok(
      (b.usage.cache_read_input_tokens ?? 0) >= firstPrompt,
      `cache_read ${b.usage.cache_read_input_tokens} covers the first prompt (${firstPrompt})`,
    );
    assert.equal(line.decision, 'resident');
    assert.ok(chatEvents(stack.sim, simMark)[0]?.pinned);
  });

  it('a conversation evicted from every slot is restored from disk for its next turn', async () => {
    stack = await startStack();
    const anthropic = client(stack);
    const first = firstTurn(31);
    const { answer: a } = await logged(stack, () => anthropic.messages.create(first));
    for (let i = 0; i < 3; i++) await chat(stack, opening(32 + i));
    const { answer: next, line } = await logged(stack, () =>
      anthropic.messages.create({
        ...first,
        messages: [
          ...first.messages,
          { role: 'assistant', content: a.content as Anthropic.TextBlockParam[] },
          { role: 'user', content: words(6, 39) },
        ],
      }),
    );
    assert.equal(line.decision, 'restore');
    const firstPrompt = a.usage.input_tokens + (a.usage.cache_read_input_tokens ?? 0);
    assert.ok(
      (next.usage.cache_read_input_tokens ?? 0) >= firstPrompt,
      `cache_read ${next.usage.cache_read_input_tokens} >= ${firstPrompt}`,
    );
  });

  it('messages.stream(…).finalMessage() assembles the streamed events, over ?beta=true as Claude Code sends it', async () => {
    stack = await startStack();
    const stream = client(stack, true).messages.stream({
      model: MODEL,
      max_tokens: 6,
      messages: [{ role: 'user', content: 'hello there' }],
    });
    const types: string[] = [];
    stream.on('streamEvent', (event) => types.push(event.type));
    const message = await stream.finalMessage();
    assert.equal(types[0], 'message_start');
    assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    assert.ok(types.includes('content_block_delta'));
    assert.equal(message.content.length, 1);
    assert.equal(message.stop_reason, 'max_tokens');
    assert.equal(message.usage.output_tokens, 6);
    assert.ok(message.usage.input_tokens > 0);
  });

  it('a tool-use round trip: the tool_use in the history and its tool_result are sent as chat tool messages', async () => {
    stack = await startStack();
    const anthropic = client(stack);
    const tools: Anthropic.Tool[] = [
      {
        name: 'Bash',
        description: 'run a command',
        input_schema: { type: 'object', properties: { command: { type: 'string' } } },
      },
    ];
    const history: Anthropic.MessageParam[] = [
      { role: 'user', content: words(50, 41) },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'ls -la' } }] },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'README.md\nsrc' }] }],
      },
    ];
    const mark = stack.sim.events.length;
    const message = await anthropic.messages.create({ model: MODEL, max_tokens: 4, tools, messages: history });
    assert.equal(message.content[0]?.type, 'text');
    const slot = chatEvents(stack.sim, mark)[0]!.slot;
    const held = (stack.sim.slotTokens(MODEL, slot) ?? []).join('');
    // (The simulator renders message text only; the tool call's conversion is checked in the unit tests.)
    assert.ok(held.includes('README.md\nsrc'), 'the tool result is in the prompt');
  });

  it('HEAD / answers 200, and count_tokens reaches the backend', async () => {
    stack = await startStack();
    const head = await fetch(`${stack.url}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    const counted = await client(stack).messages.countTokens({
      model: MODEL,
      messages: [{ role: 'user', content: 'count these words please' }],
    });
    assert.ok(counted.input_tokens > 0);
  });

  it("the session: Claude Code's metadata.user_id, else its x-claude-code-session-id header; the log line names api and session", async () => {
    stack = await startStack();
    const anthropic = client(stack);
    const body = {
      model: MODEL,
      max_tokens: 2,
      messages: [{ role: 'user' as const, content: 'which session is this' }],
    };
    const userId = JSON.stringify({ device_id: 'dev', account_uuid: '', session_id: 'cc-sess-1' });
    const fromBody = await logged(stack, () => anthropic.messages.create({ ...body, metadata: { user_id: userId } }));
    assert.equal(fromBody.line.api, 'messages');
    assert.equal(fromBody.line.session, 'cc-sess-1');
    const fromHeader = await logged(stack, () =>
      anthropic.messages.create(body, { headers: { 'x-claude-code-session-id': 'cc-sess-2' } }),
    );
    assert.equal(fromHeader.line.session, 'cc-sess-2');
    const none = await logged(stack, () => anthropic.messages.create(body));
    assert.equal(none.line.session, undefined);
  });

  it("a backend's error answer keeps its status and message in Anthropic's shape, whole and for a stream", async () => {
    stack = await startStack();
    const body = { model: MODEL, max_tokens: 2, messages: [{ role: 'user' as const, content: 'this will fail' }] };
    for (const stream of [false, true]) {
      stack.sim.injectFault({ action: 'chat', status: 500, message: 'injected chat fault' });
      const send = stream ? client(stack).messages.stream(body).finalMessage() : client(stack).messages.create(body);
      await assert.rejects(send, (err: unknown) => {
        assert.ok(err instanceof Anthropic.InternalServerError, String(err));
        assert.equal(err.status, 500);
        assert.deepEqual(err.error, { type: 'error', error: { type: 'api_error', message: 'injected chat fault' } });
        return true;
      });
    }
  });

  it("a backend failure reaches the SDK in Anthropic's shape with its status (502 unreachable, as an APIError)", async () => {
    stack = await startStack();
    await stack.restartProxy({ LLAMA_URL: 'http://127.0.0.1:9', BACKEND_TYPE: 'llama-server', N_SLOTS: '2' });
    await assert.rejects(
      client(stack).messages.create({
        model: MODEL,
        max_tokens: 2,
        messages: [{ role: 'user', content: 'anyone there' }],
      }),
      (err: unknown) => {
        assert.ok(err instanceof Anthropic.APIError, String(err));
        assert.equal(err.status, 502);
        const shape = err.error as { type: string; error: { type: string } };
        assert.equal(shape.type, 'error');
        assert.equal(shape.error.type, 'api_error');
        return true;
      },
    );
  });

  it("bad input gets a 400 in Anthropic's error shape naming the field; so does a failure of the proxy", async () => {
    stack = await startStack();
    const missing = await postJson(stack.url, '/v1/messages', { model: MODEL, max_tokens: 4 });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.type, 'error');
    assert.equal(missing.body.error.type, 'invalid_request_error');
    assert.match(missing.body.error.message, /^messages/);
    const role = await postJson(stack.url, '/v1/messages?beta=true', {
      max_tokens: 4,
      messages: [{ role: 'robot', content: 'x' }],
    });
    assert.equal(role.status, 400);
    assert.match(role.body.error.message, /messages\.0\.role/);
    const json = await postJson(stack.url, '/v1/messages', '{"messages": [');
    assert.equal(json.status, 400);
    assert.equal(json.body.type, 'error');
    await assert.rejects(
      client(stack).messages.create({ model: MODEL, max_tokens: 0, messages: [{ role: 'user', content: 'x' }] }),
      (err: unknown) => err instanceof Anthropic.BadRequestError && /max_tokens/.test(err.message),
    );
  });
});
