/**
 * Tool definitions are part of the prompt the simulator renders, as on the real llama-server with a tools-aware
 * template: a `# Tools` section in the system part, each tool as Python-style JSON, the same on chat completions,
 * `/v1/responses` (function tools; others skipped) and `/v1/messages` (Anthropic tools converted).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChatRequest } from '../../src/sim/chat-request.js';
import { pyJson } from '../../src/sim/chat-tools.js';
import { parseMessagesRequest } from '../../src/sim/messages-request.js';
import { renderChat } from '../../src/sim/tokenizer.js';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const schema = {
  type: 'object',
  properties: { command: { type: 'string', description: 'the command line to run' } },
  required: ['command'],
};
const chatTool = {
  type: 'function',
  function: { name: 'Bash', description: 'Runs a shell command and returns its output', parameters: schema },
};
const chat = (body: Record<string, unknown>) => parseChatRequest(Buffer.from(JSON.stringify(body)));
const messages = [
  { role: 'system', content: 'be brief' },
  { role: 'user', content: 'list files' },
];

describe('sim tool definitions in the prompt', () => {
  it('renders them in the system part, before the conversation, and counts their tokens', () => {
    const plain = chat({ messages });
    const withTools = chat({ messages, tools: [chatTool] });
    assert.ok(plain.ok && withTools.ok);
    assert.equal(
      withTools.task.promptText,
      '<|im_start|>system\nbe brief\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
        '{"type": "function", "function": {"name": "Bash", "description": "Runs a shell command and returns its output", ' +
        '"parameters": {"type": "object", "properties": {"command": {"type": "string", "description": "the command line to run"}}, "required": ["command"]}}}\n' +
        '</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\nlist files<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.ok(
      withTools.task.prompt.length > plain.task.prompt.length + 60,
      `${withTools.task.prompt.length} vs ${plain.task.prompt.length}`,
    );
    assert.equal(withTools.task.prompt.join(''), withTools.task.promptText);
    // Without a system message the section is the system part alone.
    assert.match(renderChat([{ role: 'user', content: 'hi' }], [chatTool]), /^<\|im_start\|>system\n# Tools\n/);
    // Another tool set is another prompt from the system part on.
    const other = chat({ messages, tools: [{ ...chatTool, function: { ...chatTool.function, name: 'Shell' } }] });
    assert.ok(other.ok && other.task.promptText !== withTools.task.promptText);
  });

  it('serialises like Jinja tojson (Python json.dumps), keys in the order sent', () => {
    assert.equal(
      pyJson({ b: [1, 'x', null, true], a: { 'é"': 2.5 } }),
      '{"b": [1, "x", null, true], "a": {"é\\"": 2.5}}',
    );
  });

  it('renders the same tools the same on chat, messages and responses', () => {
    const viaChat = chat({ messages, tools: [chatTool] });
    const viaMessages = parseMessagesRequest(
      Buffer.from(
        JSON.stringify({
          system: 'be brief',
          messages: [{ role: 'user', content: 'list files' }],
          tools: [{ name: 'Bash', description: 'Runs a shell command and returns its output', input_schema: schema }],
        }),
      ),
    );
    assert.ok(viaChat.ok && viaMessages.ok);
    assert.equal(viaMessages.task.promptText, viaChat.task.promptText);
    // Responses adds `strict: true` when absent, as llama-server's conversion does.
    const strict = chat({ messages, tools: [{ type: 'function', function: { ...chatTool.function, strict: true } }] });
    assert.ok(strict.ok);
    assert.match(strict.task.promptText, /"required": \["command"\]\}, "strict": true\}\}/);
  });

  it("answers the real server's 500 for tools that are not an array of function tools", () => {
    const notArray = chat({ messages, tools: 'x' });
    assert.deepEqual(notArray, {
      ok: false,
      status: 500,
      message: 'Failed to parse tools: Expected \'tools\' to be an array, got "x"; tools = "x"',
    });
    const builtIn = chat({ messages, tools: [{ type: 'web_search' }] });
    assert.ok(
      !builtIn.ok &&
        builtIn.status === 500 &&
        builtIn.message.startsWith('Failed to parse tools: Unsupported tool type: {"type":"web_search"}'),
    );
  });

  describe('over HTTP', () => {
    it('counts the same prompt on the three routes; responses skips non-function tools', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sim-tools-'));
      const sim: SimHandle = await startSimulator({
        mode: 'llama-server',
        models: [{ id: 'm' }],
        slotSavePath: dir,
        cost: { timeScale: 0 },
      });
      try {
        const post = async (path: string, body: unknown) => {
          const res = await fetch(`${sim.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
          assert.equal(res.status, 200, path);
          return (await res.json()) as Record<string, any>;
        };
        const tokens = (t: { prompt_n: number; cache_n: number }) => t.prompt_n + t.cache_n;
        const c = await post('/v1/chat/completions', {
          messages,
          tools: [chatTool],
          max_tokens: 1,
          cache_prompt: false,
        });
        // What /v1/responses makes of a function tool without `strict`.
        const strictTool = { type: 'function', function: { ...chatTool.function, strict: true } };
        const cStrict = await post('/v1/chat/completions', {
          messages,
          tools: [strictTool],
          max_tokens: 1,
          cache_prompt: false,
        });
        const r = await post('/v1/responses', {
          instructions: 'be brief',
          input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'list files' }] }],
          tools: [
            {
              type: 'function',
              name: 'Bash',
              description: 'Runs a shell command and returns its output',
              parameters: schema,
            },
            { type: 'web_search' },
          ],
          max_output_tokens: 1,
          cache_prompt: false,
        });
        const m = await post('/v1/messages', {
          system: 'be brief',
          messages: [{ role: 'user', content: 'list files' }],
          tools: [{ name: 'Bash', description: 'Runs a shell command and returns its output', input_schema: schema }],
          max_tokens: 1,
        });
        const plain = await post('/v1/chat/completions', { messages, max_tokens: 1, cache_prompt: false });
        assert.equal(r.usage.input_tokens, tokens(cStrict.timings));
        assert.equal(m.usage.input_tokens + m.usage.cache_read_input_tokens, tokens(c.timings));
        assert.ok(tokens(c.timings) > tokens(plain.timings) + 60, `${tokens(c.timings)} vs ${tokens(plain.timings)}`);
      } finally {
        await sim.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
