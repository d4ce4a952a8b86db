/**
 * Model identity (fingerprint) over HTTP: an entry records which model file wrote it, and is restored only into
 * the same model file. The backend is restarted at the same URL (entries are per backend URL anyway) with the same
 * model name, once with another file behind it and once with the same one.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  chat,
  continued,
  exists,
  keyOf,
  metaPath,
  MODEL,
  opening,
  readMeta,
  slotFileEvents,
} from '../support/cache.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle, SimModelOptions } from '../../src/sim/index.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

const V1: Partial<SimModelOptions> = { path: '/models/a-v1.gguf', sizeBytes: 115902464 };
const V2: Partial<SimModelOptions> = { path: '/models/a-v2.gguf', sizeBytes: 231804928 };

describe('smart policy: model fingerprints', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  let backend: SimHandle | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    await backend?.close();
    stack = backend = undefined;
  });

  /** A llama-server simulator for MODEL with the given file, writing into the stack's cache dir. */
  function startBackend(model: Partial<SimModelOptions>, port = 0): Promise<SimHandle> {
    return startSimulator({
      mode: 'llama-server',
      models: [{ id: MODEL, nSlots: 2, ...model }],
      slotSavePath: stack!.cacheDir,
      cacheRamMiB: 0,
      cost: { timeScale: 0, kvBytesPerToken: 1000 },
      port,
    });
  }

  /**
   * A conversation saved (on shutdown) by the v1 file; then the backend restarts on the same port with `next`,
   * and the proxy restarts too. Returns the conversation's next turn's chat result.
   */
  async function savedByV1ThenServedBy(next: Partial<SimModelOptions>) {
    stack = await startStack({ env: { SAVE_POLICY: 'smart' } });
    backend = await startBackend(V1);
    await stack.restartProxy({ LLAMA_URL: backend.url });
    const a = opening(5101);
    const first = await chat(stack, a);
    await stack.restartProxy(); // saves a on shutdown
    assert.deepEqual(
      slotFileEvents(backend, 'save').map((s) => [s.filename, s.ok]),
      [[keyOf(a), true]],
    );
    const meta = await readMeta(stack.metaDir, keyOf(a));

    const port = backend.port;
    await backend.close();
    backend = await startBackend(next, port);
    await stack.restartProxy();
    const turn = await chat(stack, continued(a, first.content, 5102));
    return { a, meta, first, turn };
  }

  it('an entry written by another model file under the same name is not restored', async () => {
    const { a, meta, turn } = await savedByV1ThenServedBy(V2);

    assert.equal(typeof meta.fingerprint, 'string', 'the meta records the identity of the model file');
    assert.match(meta.fingerprint, /a-v1\.gguf/);
    assert.deepEqual(slotFileEvents(backend!, 'restore'), [], 'no restore call to the new model');
    assert.equal(turn.line.decision, 'cold');
    assert.equal(turn.line.status, 200);
    assert.ok(await exists(metaPath(stack!.metaDir, keyOf(a))), 'the entry is kept (the old file may come back)');
  });

  it('the same model file after a restart: the entry is restored', async () => {
    const { a, first, turn } = await savedByV1ThenServedBy(V1);

    assert.equal(turn.line.decision, 'restore');
    assert.deepEqual(
      slotFileEvents(backend!, 'restore').map((r) => [r.filename, r.ok]),
      [[keyOf(a), true]],
    );
    const firstPrompt = first.timings.cache_n + first.timings.prompt_n;
    assert.ok(
      turn.timings.cache_n >= firstPrompt,
      `cache_n ${turn.timings.cache_n} covers the first prompt (${firstPrompt})`,
    );
  });
});
