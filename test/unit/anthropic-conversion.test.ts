/**
 * The Anthropic Messages conversion, pure: request → chat completions (llama-server's conversion, canonical for the
 * key), chat answer → message, and chat SSE → Anthropic events whatever the chunking.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { normaliseBillingHeader, toChatBody, validateMessagesBody } from '../../src/api/anthropic/request.js';
import { chatToMessage } from '../../src/api/anthropic/response.js';
import { AnthropicStream } from '../../src/api/anthropic/stream.js';
import { ProxyError } from '../../src/errors.js';
import { messagesAdapter, messagesSession } from '../../src/generation/adapters/messages.js';

const TRACES = new URL('../../../../shared/agent-traces/', import.meta.url);
const trace = (name: string): Record<string, any> | undefined => {
  try {
    return JSON.parse(readFileSync(new URL(name, TRACES), 'utf8')).body;
  } catch {
    return undefined;
  }
};

describe('Anthropic request → chat completions', () => {
  it('converts tool_use, tool_result, thinking and images as llama-server does, dropping cache_control and unknown fields', () => {
    const chat = toChatBody(
      validateMessagesBody({
        model: 'm',
        max_tokens: 10,
        metadata: { user_id: 'u' },
        output_config: { effort: 'high' },
        system: [
          { type: 'text', text: 'A' },
          { type: 'text', text: 'B', cache_control: { type: 'ephemeral' } },
        ],
        tools: [{ name: 'Bash', description: 'run', input_schema: { type: 'object' } }],
        tool_choice: { type: 'any' },
        stop_sequences: ['END'],
        thinking: { type: 'enabled', budget_tokens: 99 },
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAA' } },
            ],
          },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: 'hmm', signature: 's' },
              { type: 'tool_use', id: 't1', name: 'Bash', input: { command: 'ls' } },
            ],
          },
          {
            role: 'user',
            content: [
              {
                type: 'tool_result',
                tool_use_id: 't1',
                content: [
                  { type: 'text', text: 'a' },
                  { type: 'text', text: 'b' },
                ],
              },
              { type: 'text', text: 'next' },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(chat, {
      model: 'm',
      messages: [
        { role: 'system', content: 'AB' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'hi' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAA' } },
          ],
        },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ id: 't1', type: 'function', function: { name: 'Bash', arguments: '{"command":"ls"}' } }],
          reasoning_content: 'hmm',
        },
        { role: 'user', content: [{ type: 'text', text: 'next' }] },
        { role: 'tool', tool_call_id: 't1', content: 'ab' },
      ],
      tools: [{ type: 'function', function: { name: 'Bash', description: 'run', parameters: { type: 'object' } } }],
      tool_choice: 'required',
      stop: ['END'],
      max_tokens: 10,
      thinking_budget_tokens: 99,
    });
  });

  it('defaults max_tokens to 4096 and asks a stream for per-token timings', () => {
    const chat = toChatBody(validateMessagesBody({ stream: true, messages: [{ role: 'user', content: 'x' }] }));
    assert.equal(chat.max_tokens, 4096);
    assert.equal(chat.stream, true);
    assert.equal(chat.timings_per_token, true);
  });

  it("normalises the billing header's cch stamp only where llama-server does", () => {
    assert.equal(
      normaliseBillingHeader('x-anthropic-billing-header: cc_version=1; cch=a5145;You are'),
      'x-anthropic-billing-header: cc_version=1; cch=fffff;You are',
    );
    assert.equal(
      normaliseBillingHeader('x-anthropic-billing-header: cch=a51;'),
      'x-anthropic-billing-header: cch=a51;',
    );
    assert.equal(normaliseBillingHeader('You are: cch=a5145;'), 'You are: cch=a5145;');
  });

  it('two turns of a recorded Claude Code session share their canonical parts although cache_control moved', (t) => {
    const first = trace('claude-tool/002-v1_messages.json');
    const second = trace('claude-tool/003-v1_messages.json');
    if (!first || !second) return t.skip('agent traces not available');
    const a = messagesAdapter.read(first, { headers: {}, query: {} });
    const b = messagesAdapter.read(second, { headers: {}, query: {} });
    assert.notDeepEqual(first.messages[0], second.messages[0], 'the recorded marker moved');
    assert.deepEqual(b.parts.slice(0, a.parts.length), a.parts);
    assert.ok(b.parts.length > a.parts.length);
    assert.equal(a.session, 'c7833564-8037-449e-b085-0d65d2a974a9');
    // What the backend gets: the converted chat body, pinned.
    const chat = JSON.parse(String(b.backendCall({ id_slot: 1 }).body)) as {
      messages: Array<Record<string, unknown>>;
      id_slot: number;
    };
    assert.equal(chat.id_slot, 1);
    assert.ok(!JSON.stringify(chat).includes('cache_control'));
    assert.equal(chat.messages[2]!.role, 'system', "Claude Code's system message stays where it was");
    assert.equal((chat.messages[3]!.tool_calls as any[])[0].function.name, 'Bash');
    assert.equal(chat.messages[4]!.role, 'tool');
  });

  for (const [body, field] of [
    [{}, 'messages'],
    [{ messages: [] }, 'messages'],
    [{ messages: ['x'] }, 'messages.0'],
    [{ messages: [{ role: 'robot', content: 'x' }] }, 'messages.0.role'],
    [{ messages: [{ role: 'user' }] }, 'messages.0.content'],
    [{ messages: [{ role: 'user', content: [{ type: 'text' }] }] }, 'messages.0.content.0.text'],
    [
      { messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'n', input: 'x' }] }] },
      'messages.0.content.0.input',
    ],
    [{ messages: [{ role: 'user', content: [{ type: 'tool_result' }] }] }, 'messages.0.content.0.tool_use_id'],
    [{ messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, 'max_tokens'],
    [{ messages: [{ role: 'user', content: 'x' }], system: [{ type: 'text', text: 1 }] }, 'system.0.text'],
    [{ messages: [{ role: 'user', content: 'x' }], tools: [{ description: 'd' }] }, 'tools.0.name'],
    [{ messages: [{ role: 'user', content: 'x' }], stop_sequences: 'END' }, 'stop_sequences'],
    [{ messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, 'stream'],
  ] as const) {
    it(`refuses a bad ${field} with a 400 naming it`, () => {
      assert.throws(
        () => validateMessagesBody(body),
        (err: unknown) =>
          err instanceof ProxyError && err.status === 400 && err.param === field && err.message.startsWith(field),
      );
    });
  }
});

describe('chat answer → Anthropic message', () => {
  it('thinking, text and tool_use blocks, tool_use stop reason, usage from timings', () => {
    const message = chatToMessage({
      id: 'chatcmpl-1',
      model: 'tiny',
      choices: [
        {
          finish_reason: 'tool_calls',
          message: {
            role: 'assistant',
            content: 'ok',
            reasoning_content: 'why',
            tool_calls: [
              { id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } },
              { id: 'c2', function: { name: 'g', arguments: 'not json' } },
            ],
          },
        },
      ],
      usage: { prompt_tokens: 100, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 90 } },
      timings: { cache_n: 90, prompt_n: 10, predicted_n: 7 },
    });
    assert.deepEqual(message, {
      id: 'chatcmpl-1',
      type: 'message',
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'why', signature: '' },
        { type: 'text', text: 'ok' },
        { type: 'tool_use', id: 'c1', name: 'f', input: { a: 1 } },
        { type: 'tool_use', id: 'c2', name: 'g', input: {} },
      ],
      model: 'tiny',
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 10, cache_read_input_tokens: 90, output_tokens: 7 },
    });
  });

  it('length is max_tokens, stop is end_turn; usage from usage alone', () => {
    const limited = chatToMessage({
      choices: [{ finish_reason: 'length', message: { content: 'x' } }],
      usage: { prompt_tokens: 12, completion_tokens: 3, prompt_tokens_details: { cached_tokens: 2 } },
    });
    assert.equal(limited.stop_reason, 'max_tokens');
    assert.deepEqual(limited.usage, { input_tokens: 10, cache_read_input_tokens: 2, output_tokens: 3 });
    assert.equal(
      chatToMessage({ choices: [{ finish_reason: 'stop', message: { content: 'x' } }] }).stop_reason,
      'end_turn',
    );
  });
});

const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-9', model: 'tiny', object: 'chat.completion.chunk', choices: [{ index: 0, finish_reason: finish, delta }], ...extra })}\n\n`;

/** A llama-server chat stream with reasoning, text and two tool calls, per-token timings on. */
const STREAM = [
  chunk({ role: 'assistant', content: null }),
  chunk({ reasoning_content: 'think' }, { timings: { cache_n: 40, prompt_n: 5, predicted_n: 1 } }),
  chunk({ reasoning_content: 'ing é' }, { timings: { cache_n: 40, prompt_n: 5, predicted_n: 2 } }),
  chunk({ content: 'Hello' }, { timings: { cache_n: 40, prompt_n: 5, predicted_n: 3 } }),
  chunk({ tool_calls: [{ index: 0, id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a"' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: ':1}' } }] }),
  chunk({ tool_calls: [{ index: 1, id: 'c2', type: 'function', function: { name: 'g' } }] }),
  chunk({}, { timings: { cache_n: 40, prompt_n: 5, predicted_n: 9 } }, 'tool_calls'),
  'data: [DONE]\n\n',
].join('');

function events(sse: string): Array<{ event: string; data: any }> {
  return sse
    .split('\n\n')
    .filter((f) => f.trim() !== '')
    .map((frame) => {
      const [eventLine, dataLine] = frame.split('\n');
      return { event: eventLine!.slice('event: '.length), data: JSON.parse(dataLine!.slice('data: '.length)) };
    });
}

describe('chat SSE → Anthropic events', () => {
  it('message_start with the prompt usage, ping, blocks in order, message_delta with the whole usage, message_stop', () => {
    const stream = new AnthropicStream();
    const out = events(stream.push(Buffer.from(STREAM)) + stream.end());
    assert.deepEqual(
      out.map(
        (e) =>
          `${e.event}${e.data.index !== undefined ? e.data.index : ''}${e.data.delta?.type ? ':' + e.data.delta.type : ''}`,
      ),
      [
        'message_start',
        'ping',
        'content_block_start0',
        'content_block_delta0:thinking_delta',
        'content_block_delta0:thinking_delta',
        'content_block_delta0:signature_delta',
        'content_block_stop0',
        'content_block_start1',
        'content_block_delta1:text_delta',
        'content_block_stop1',
        'content_block_start2',
        'content_block_delta2:input_json_delta',
        'content_block_delta2:input_json_delta',
        'content_block_stop2',
        'content_block_start3',
        'content_block_stop3',
        'message_delta',
        'message_stop',
      ],
    );
    assert.deepEqual(out[0]!.data.message.usage, { cache_read_input_tokens: 40, input_tokens: 5, output_tokens: 0 });
    assert.equal(out[0]!.data.message.id, 'chatcmpl-9');
    assert.deepEqual(out[10]!.data.content_block, { type: 'tool_use', id: 'c1', name: 'f', input: {} });
    assert.deepEqual(out[16]!.data, {
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: { output_tokens: 9, input_tokens: 5, cache_read_input_tokens: 40 },
    });
  });

  it('gives the same events however the stream is split, even inside a UTF-8 character or a CRLF', () => {
    const bytes = Buffer.from(STREAM.replace(/\n/g, '\r\n'));
    const whole = new AnthropicStream();
    const expected = whole.push(bytes) + whole.end();
    for (let size = 1; size <= 7; size++) {
      const split = new AnthropicStream();
      let out = '';
      for (let i = 0; i < bytes.length; i += size) out += split.push(bytes.subarray(i, i + size));
      assert.equal(out + split.end(), expected, `chunks of ${size} bytes`);
    }
    assert.ok(expected.includes('ing é'));
  });

  it("a backend error event becomes Anthropic's error event and ends the stream", () => {
    const stream = new AnthropicStream();
    const out = events(
      stream.push(
        Buffer.from(
          chunk({ content: 'a' }) + 'data: {"error":{"code":500,"message":"boom","type":"server_error"}}\n\n',
        ),
      ) + stream.end(),
    );
    assert.deepEqual(out.at(-1), {
      event: 'error',
      data: { type: 'error', error: { type: 'api_error', message: 'boom' } },
    });
    assert.ok(!out.some((e) => e.event === 'message_stop'));
  });

  it('a stream that ends before its finish ends with an error event, not a quiet message_stop', () => {
    const stream = new AnthropicStream();
    const out = events(stream.push(Buffer.from(chunk({ content: 'a' }))) + stream.end());
    assert.equal(out.at(-1)!.event, 'error');
  });
});

describe('the Messages session', () => {
  it('metadata.user_id: the JSON session_id, an older session_ suffix, else the id itself', () => {
    const user = JSON.stringify({ device_id: 'd1', account_uuid: '', session_id: 'fd1af699-c7d9' });
    assert.equal(messagesSession({ user_id: user }), 'fd1af699-c7d9');
    assert.equal(messagesSession({ user_id: 'user_ab12_account__session_3f2e-77' }), '3f2e-77', 'older Claude Code');
    assert.equal(messagesSession({ user_id: 'alice' }), 'alice');
    assert.equal(messagesSession({ user_id: 'null' }), 'null', 'JSON that is no object is a plain id');
    assert.equal(messagesSession({ user_id: ' ' }), undefined);
    assert.equal(messagesSession(undefined), undefined);
  });

  it('in a recorded Claude Code request it is the id of its x-claude-code-session-id header', (t) => {
    let recorded: { headers: Record<string, string>; body: unknown };
    try {
      recorded = JSON.parse(readFileSync(new URL('claude-plain/002-v1_messages.json', TRACES), 'utf8'));
    } catch {
      return t.skip('agent traces not available');
    }
    const header = recorded.headers['x-claude-code-session-id'];
    assert.ok(header);
    assert.equal(messagesAdapter.read(recorded.body, { headers: {}, query: {} }).session, header);
  });
});
