/**
 * The simulator's `/v1/messages` renders a conversation with tool calls as llama-server's conversion does: a
 * `tool_result` block becomes a `tool` message (it used to be dropped, so the same conversation sent direct and
 * through the proxy's own conversion rendered different prompts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChatRequest } from '../../src/sim/chat-request.js';
import { parseMessagesRequest } from '../../src/sim/messages-request.js';

describe('sim /v1/messages with tool use', () => {
  it('renders tool results as tool messages, the same prompt as the chat conversion', () => {
    const messages = parseMessagesRequest(
      Buffer.from(
        JSON.stringify({
          system: [{ type: 'text', text: 'be brief' }],
          messages: [
            { role: 'user', content: [{ type: 'text', text: 'list files' }] },
            {
              role: 'assistant',
              content: [
                { type: 'text', text: 'running ls' },
                { type: 'tool_use', id: 't1', name: 'Bash', input: { command: 'ls' } },
              ],
            },
            {
              role: 'user',
              content: [
                { type: 'tool_result', tool_use_id: 't1', content: 'a.txt\nb.txt' },
                { type: 'text', text: 'and?' },
              ],
            },
          ],
        }),
      ),
    );
    const chat = parseChatRequest(
      Buffer.from(
        JSON.stringify({
          messages: [
            { role: 'system', content: 'be brief' },
            { role: 'user', content: [{ type: 'text', text: 'list files' }] },
            {
              role: 'assistant',
              content: [{ type: 'text', text: 'running ls' }],
              tool_calls: [{ id: 't1', type: 'function', function: { name: 'Bash', arguments: '{"command":"ls"}' } }],
            },
            { role: 'user', content: [{ type: 'text', text: 'and?' }] },
            { role: 'tool', tool_call_id: 't1', content: 'a.txt\nb.txt' },
          ],
        }),
      ),
    );
    assert.ok(messages.ok && chat.ok);
    assert.match(messages.task.promptText, /<\|im_start\|>tool\na\.txt\nb\.txt<\|im_end\|>/);
    assert.equal(messages.task.promptText, chat.task.promptText);
  });
});
