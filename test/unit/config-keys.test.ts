/**
 * API_KEYS and BACKEND_API_KEY: inline or `@file`, validated at start-up, and never echoed in an error message
 * (a key must not end up in a terminal scroll-back or a service log).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';

function configError(env: Record<string, string>, argv: string[] = []): ConfigError {
  try {
    loadConfig(argv, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('API_KEYS and BACKEND_API_KEY', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'proxycache-keys-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('are unset by default, and an empty value is unset', () => {
    assert.equal(loadConfig([], {}).apiKeys, null);
    assert.equal(loadConfig([], {}).backendApiKey, null);
    assert.equal(loadConfig([], { API_KEYS: ' ', BACKEND_API_KEY: '' }).apiKeys, null);
  });

  it('API_KEYS: a comma list, trimmed, empty items and repeats dropped', () => {
    assert.deepEqual(loadConfig([], { API_KEYS: ' sk-a , sk-b,,sk-a ' }).apiKeys, ['sk-a', 'sk-b']);
    assert.deepEqual(loadConfig(['--api-keys', 'one'], {}).apiKeys, ['one']);
  });

  it('API_KEYS=@file: one key per line; blank lines, # comments and CRLF ignored', async () => {
    const file = join(dir, 'keys.txt');
    await writeFile(file, '# team keys\r\nsk-alice\r\n\r\n  sk-bob  \n# old: sk-carol\n');
    assert.deepEqual(loadConfig([], { API_KEYS: `@${file}` }).apiKeys, ['sk-alice', 'sk-bob']);
  });

  it('API_KEYS=@file that is missing or holds no key: a ConfigError naming the file', async () => {
    const missing = join(dir, 'nope.txt');
    const err = configError({ API_KEYS: `@${missing}` });
    assert.equal(err.variable, 'API_KEYS');
    assert.match(err.message, /cannot read .*nope\.txt \(ENOENT\)/);
    const empty = join(dir, 'empty.txt');
    await writeFile(empty, '# nothing yet\n\n');
    assert.match(configError({ API_KEYS: `@${empty}` }).message, /expected at least one key/);
    assert.match(configError({ API_KEYS: '@' }).message, /expected a file path after @/);
  });

  it('a key a header cannot carry is refused, and the message never shows an inline key', () => {
    const err = configError({ API_KEYS: 'sk-good,sk-s3cret wïth space' });
    assert.match(err.message, /key 2 holds a space or a character other than visible ASCII/);
    assert.ok(!err.message.includes('s3cret'), err.message);
    assert.equal(err.value, undefined);
    const fromFlag = configError({}, ['--backend-api-key=s3cret\u00e9']);
    assert.equal(fromFlag.variable, 'BACKEND_API_KEY');
    assert.ok(!fromFlag.message.includes('s3cret'), fromFlag.message);
  });

  it('BACKEND_API_KEY: one key inline (commas included) or the one key of @file', async () => {
    assert.equal(loadConfig([], { BACKEND_API_KEY: ' sk-backend ' }).backendApiKey, 'sk-backend');
    const file = join(dir, 'backend.key');
    await writeFile(file, 'sk-from-file\n');
    assert.equal(loadConfig([], { BACKEND_API_KEY: `@${file}` }).backendApiKey, 'sk-from-file');
    const two = join(dir, 'two.key');
    await writeFile(two, 'a\nb\n');
    const err = configError({ BACKEND_API_KEY: `@${two}` });
    assert.match(err.message, /expected one key, the file holds 2 lines/);
    assert.ok(err.message.includes(two), 'a file path may be shown');
  });
});
