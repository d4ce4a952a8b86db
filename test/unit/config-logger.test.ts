import { it } from 'node:test';
import assert from 'node:assert/strict';
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
