import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HELP, parseSimArgs } from '../../src/sim/cli-args.js';
import {
  AbortedError,
  DEFAULT_COST_MODEL,
  resolveCostModel,
  sleepScaled,
  transferMs,
} from '../../src/sim/cost-model.js';
import { instanceConfigs } from '../../src/sim/sim-config.js';

describe('sim cost model', () => {
  it('has the documented defaults and rejects bad values', () => {
    assert.deepEqual(resolveCostModel(), {
      prefillMsPerToken: 0.25,
      decodeMsPerToken: 20,
      batchTokens: 2048,
      kvBytesPerToken: 100_000,
      saveMsPerMB: 0.5,
      restoreMsPerMB: 0.5,
      ramLoadMsPerMB: 0.1,
      modelLoadMs: 5000,
      timeScale: 1,
    });
    assert.equal(resolveCostModel({ timeScale: 0 }).timeScale, 0);
    assert.throws(() => resolveCostModel({ decodeMsPerToken: -1 }), /decodeMsPerToken/);
    assert.throws(() => resolveCostModel({ batchTokens: 0 }), /batchTokens/);
    assert.throws(() => resolveCostModel({ batchTokens: 1.5 }), /batchTokens/);
    assert.equal(transferMs(2_000_000, 0.5), 1);
  });

  it('never sleeps at timeScale 0 and stops at once when aborted', async () => {
    const t0 = performance.now();
    await sleepScaled(60_000, 0);
    assert.ok(performance.now() - t0 < 1000);
    const ac = new AbortController();
    const pending = sleepScaled(60_000, 1, ac.signal);
    ac.abort();
    await assert.rejects(pending, AbortedError);
  });
});

describe('sim options', () => {
  it('defaults: 4 slots, unified KV only when slots are not given, alias = id', () => {
    const [implicit, explicit] = instanceConfigs({ mode: 'llama-swap', models: [{ id: 'a' }, { id: 'b', nSlots: 2 }] });
    assert.equal(implicit!.nSlots, 4);
    assert.equal(implicit!.kvUnified, true);
    assert.equal(explicit!.kvUnified, false);
    assert.equal(implicit!.alias, 'a');
    assert.equal(implicit!.path, '/models/a.gguf');
    assert.equal(implicit!.cacheRamMiB, 8192);
    assert.equal(implicit!.engine, 'shared');
    const [noAlias] = instanceConfigs({ mode: 'llama-server', models: [{ id: 'a', alias: null }] });
    assert.equal(noAlias!.alias, undefined);
  });

  it('rejects bad options with the option name', () => {
    assert.throws(() => instanceConfigs({ mode: 'llama-server', models: [] }), /models/);
    assert.throws(() => instanceConfigs({ mode: 'llama-server', models: [{ id: 'a', nSlots: 0 }] }), /nSlots/);
    assert.throws(() => instanceConfigs({ mode: 'llama-swap', models: [{ id: 'a' }, { id: 'a' }] }), /twice/);
    assert.throws(
      () => instanceConfigs({ mode: 'llama-server', models: [{ id: 'a' }], engine: 'gpu' as never }),
      /engine/,
    );
  });
});

describe('sim CLI flags', () => {
  it('parses every option', () => {
    const o = parseSimArgs([
      '--mode',
      'llama-swap',
      '--models',
      'a,b',
      '--n-slots',
      '2',
      '--port',
      '8000',
      '--slot-save-path',
      './kv',
      '--prefill-ms-per-token',
      '0.5',
      '--time-scale',
      '0',
      '--cache-ram',
      '0',
      '--no-cache-idle-slots',
      '--max-running',
      '2',
      '--restore-gives-no-reuse',
      'b',
      '--reply-text-tokenizes-differently',
      'a',
      '--engine',
      'per-slot',
      '--batch-tokens',
      '256',
    ]);
    assert.notEqual(o, 'help');
    if (o === 'help') return;
    assert.equal(o.mode, 'llama-swap');
    assert.deepEqual(
      o.models.map((m) => [m.id, m.nSlots, m.restoreGivesNoReuse, m.replyTextTokenizesDifferently]),
      [
        ['a', 2, false, true],
        ['b', 2, true, false],
      ],
    );
    assert.equal(o.port, 8000);
    assert.equal(o.slotSavePath, './kv');
    assert.deepEqual(o.cost, { prefillMsPerToken: 0.5, batchTokens: 256, timeScale: 0 });
    assert.equal(o.engine, 'per-slot');
    assert.equal(o.cacheRamMiB, 0);
    assert.equal(o.cacheIdleSlots, false);
    assert.equal(o.maxRunning, 2);
  });

  it('shows help with defaults and refuses bad values', () => {
    assert.equal(parseSimArgs(['--help']), 'help');
    assert.match(HELP, /--time-scale\s+\(default 1\)/);
    assert.match(HELP, new RegExp(`--model-load-ms\\s+\\(default ${DEFAULT_COST_MODEL.modelLoadMs}\\)`));
    assert.match(HELP, /--engine MODE\s+shared \| per-slot\s+\(default shared\)/);
    assert.match(HELP, /--batch-tokens\s+\(default 2048\)/);
    assert.throws(() => parseSimArgs(['--mode', 'nope']), /--mode/);
    assert.throws(() => parseSimArgs(['--engine', 'gpu']), /--engine/);
    assert.throws(() => parseSimArgs(['--port', 'x']), /--port/);
    assert.throws(() => parseSimArgs(['--bogus']));
  });
});
