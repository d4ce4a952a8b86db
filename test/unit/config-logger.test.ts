import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';

function capture(): { lines: string[]; destination: { write(line: string): void } } {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

it('createLogger writes one JSON object per line at or above its level', () => {
  const { lines, destination } = capture();
  const log = createLogger('warn', destination);
  log.info('hidden');
  log.warn({ backend: 'http://a:1' }, 'shown');
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith('\n'));
  const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(entry.level, 'warn');
  assert.equal(entry.msg, 'shown');
  assert.equal(entry.backend, 'http://a:1');
  assert.equal(typeof entry.time, 'string');
});

it('createLogger("silent") writes nothing', () => {
  const { lines, destination } = capture();
  createLogger('silent', destination).fatal('nothing');
  assert.deepEqual(lines, []);
});

it('createLogger with LOG_FORMAT=pretty writes one readable line per event: time, level, message and decision first, fields after', () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const log = createLogger('info', destination, 'pretty');
  log.debug('hidden');
  log.info({ model: 'm', decision: 'restore', wait_ms: 1.5 }, 'chat');
  const text = lines.join('');
  assert.equal(text.trim().split('\n').length, 1, text);
  assert.throws(() => JSON.parse(text), 'not JSON');
  assert.match(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: chat restore /);
  assert.match(text, /"wait_ms":1\.5/);
  // eslint-disable-next-line no-control-regex -- ESC is what a colour code starts with
  assert.doesNotMatch(text, /\u001b\[/, 'no colour codes when writing to a stream that is not a terminal');
});
