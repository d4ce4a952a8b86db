/**
 * Where the real suite and the real bench find llama-server and its model (test/support/real-server.ts, and the
 * bench's wording on top of it): the lookup order, and which missing file is a reason to skip and which a mistake.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findLlamaServer } from '../../bench/real-server.js';
import { DEFAULT_LLAMA_SERVER_BIN, locateLlamaServer } from '../../test/support/real-server.js';

describe('locating llama-server and its model', () => {
  let root = '';
  let sharedBin = '';
  let otherBin = '';
  let otherModel = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'proxycache-locate-'));
    await mkdir(join(root, 'shared'));
    await mkdir(join(root, 'other'));
    sharedBin = join(root, 'shared', 'llama-server');
    otherBin = join(root, 'other', 'llama-server');
    otherModel = join(root, 'other', 'small.gguf');
    for (const file of [sharedBin, join(root, 'shared', 'tiny-chat.gguf'), otherBin, otherModel])
      await writeFile(file, '');
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('the default binary is ../shared/llama-server/llama-server beside the repository', () => {
    // This file runs as dist/test/unit/*.js: four levels up is the folder that holds the repository.
    const beside = fileURLToPath(new URL('../../../../shared/llama-server/llama-server', import.meta.url));
    assert.equal(DEFAULT_LLAMA_SERVER_BIN, beside);
  });

  it('without variables: the default binary and tiny-chat.gguf beside it', () => {
    assert.deepEqual(locateLlamaServer({}, sharedBin), {
      bin: sharedBin,
      model: join(root, 'shared', 'tiny-chat.gguf'),
    });
  });

  it('LLAMA_SERVER_BIN comes first, and the model is looked for beside it', () => {
    assert.deepEqual(locateLlamaServer({ LLAMA_SERVER_BIN: otherBin, LLAMA_MODEL: otherModel }, sharedBin), {
      bin: otherBin,
      model: otherModel,
    });
    const where = locateLlamaServer({ LLAMA_SERVER_BIN: otherBin }, sharedBin);
    assert.deepEqual(where, {
      explicit: false,
      absent: 'model',
      skip: `no model (LLAMA_MODEL unset, ${join(root, 'other', 'tiny-chat.gguf')} absent)`,
    });
  });

  it('no binary at the default place is a reason to skip; the bench says where to put one', () => {
    const missing = join(root, 'nowhere', 'llama-server');
    assert.deepEqual(locateLlamaServer({}, missing), {
      explicit: false,
      absent: 'binary',
      skip: `no llama-server binary (LLAMA_SERVER_BIN unset, ${missing} absent)`,
    });
    assert.deepEqual(findLlamaServer({}, missing), {
      missing: `no llama-server: set LLAMA_SERVER_BIN or put one at ${missing}`,
    });
  });

  it('a variable naming a missing file is a mistake, for the suite and the bench alike', () => {
    const bin = join(root, 'typo', 'llama-server');
    assert.deepEqual(locateLlamaServer({ LLAMA_SERVER_BIN: bin }, sharedBin), {
      explicit: true,
      absent: 'binary',
      skip: `LLAMA_SERVER_BIN=${bin} does not exist`,
    });
    assert.deepEqual(findLlamaServer({ LLAMA_SERVER_BIN: bin }, sharedBin), {
      missing: `LLAMA_SERVER_BIN=${bin} does not exist`,
    });
    const model = join(root, 'typo.gguf');
    assert.deepEqual(locateLlamaServer({ LLAMA_MODEL: model }, sharedBin), {
      explicit: true,
      absent: 'model',
      skip: `LLAMA_MODEL=${model} does not exist`,
    });
  });
});
