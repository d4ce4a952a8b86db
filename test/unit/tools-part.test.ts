import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startsWithSystemText, toolsPart, withToolsPart } from '../../src/prompt/tools-part.js';

const read = {
  name: 'read_file',
  description: 'Read a file',
  parameters: { type: 'object', properties: { path: { type: 'string' } } },
};

describe('toolsPart', () => {
  it('gives the chat form and the Responses form of a function tool the same text', () => {
    assert.equal(
      toolsPart([{ type: 'function', function: read }]),
      toolsPart([{ type: 'function', ...read, strict: true }]),
    );
    assert.equal(toolsPart([{ type: 'function', function: read }]), JSON.stringify(read));
  });

  it('leaves out tool types that render nothing, and gives nothing for no tools', () => {
    assert.equal(toolsPart([{ type: 'web_search' }, { type: 'namespace', name: 'x' }]), undefined);
    assert.equal(toolsPart([]), undefined);
    assert.equal(toolsPart(undefined), undefined);
    assert.equal(toolsPart('tools'), undefined);
  });

  it('puts one tool a line, in the order sent', () => {
    const other = { ...read, name: 'list_dir' };
    assert.equal(
      toolsPart([
        { type: 'function', function: read },
        { type: 'function', function: other },
      ]),
      `${JSON.stringify(read)}\n${JSON.stringify(other)}`,
    );
  });
});

describe('withToolsPart', () => {
  const tools = [{ type: 'function', function: read }];
  it("goes after a leading system part, else first; no tools leaves the parts as they are (the seed's keys)", () => {
    assert.deepEqual(withToolsPart(['sys', 'user'], true, tools), ['sys', JSON.stringify(read), 'user']);
    assert.deepEqual(withToolsPart(['user'], false, tools), [JSON.stringify(read), 'user']);
    assert.deepEqual(withToolsPart(['sys', 'user'], true, undefined), ['sys', 'user']);
  });

  it('knows a leading system message only when its text is the first part', () => {
    assert.equal(
      startsWithSystemText([
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
      ]),
      true,
    );
    assert.equal(startsWithSystemText([{ role: 'developer', content: 'be brief' }]), true);
    assert.equal(
      startsWithSystemText([
        { role: 'system', content: '  ' },
        { role: 'user', content: 'hi' },
      ]),
      false,
    );
    assert.equal(startsWithSystemText([{ role: 'user', content: 'hi' }]), false);
    assert.equal(startsWithSystemText([]), false);
  });
});
