/** The bench's cost ratios: parsing, moving the default cost model to a ratio, and the checks chosen per ratio. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { targetChecks } from '../../bench/report.js';
import type { BenchResults } from '../../bench/run.js';
import { DEFAULT_COST_MODEL } from '../../src/sim/cost-model.js';
import { MEASURED_CPU_SERVER, costRatioOf, parseCostRatio, withCostRatio } from '../../src/sim/cost-calibration.js';

describe('cost ratios', () => {
  it('the default cost model restores and saves at 0.2 × the prefill cost per token', () => {
    const r = costRatioOf(DEFAULT_COST_MODEL);
    assert.ok(Math.abs(r.restoreToPrefill - 0.2) < 1e-9, String(r.restoreToPrefill));
    assert.ok(Math.abs(r.saveToPrefill - 0.2) < 1e-9, String(r.saveToPrefill));
  });

  it('withCostRatio reaches the ratio asked for and keeps prefill, decode and KV size', () => {
    for (const text of ['0.1', '0.3', 'cpu']) {
      const ratio = parseCostRatio(text);
      const cost = withCostRatio(DEFAULT_COST_MODEL, ratio);
      const got = costRatioOf(cost);
      assert.ok(Math.abs(got.restoreToPrefill - ratio.restoreToPrefill) < 1e-9, `${text}: ${got.restoreToPrefill}`);
      assert.ok(Math.abs(got.saveToPrefill - ratio.saveToPrefill) < 1e-9, `${text}: ${got.saveToPrefill}`);
      assert.equal(cost.prefillMsPerToken, DEFAULT_COST_MODEL.prefillMsPerToken);
      assert.equal(cost.decodeMsPerToken, DEFAULT_COST_MODEL.decodeMsPerToken);
      assert.equal(cost.kvBytesPerToken, DEFAULT_COST_MODEL.kvBytesPerToken);
      assert.ok(cost.ramLoadMsPerMB <= cost.restoreMsPerMB, `${text}: a RAM load is never slower than a disk restore`);
    }
    // 0.1 at 0.25 ms per token of prefill and 100 kB per token: 0.25 ms per MB, 4 GB/s.
    assert.equal(withCostRatio(DEFAULT_COST_MODEL, parseCostRatio('0.1')).restoreMsPerMB, 0.25);
  });

  it('cpu is the measured server: a restore costs well under a hundredth of a prefill, a save more than a restore', () => {
    const cpu = parseCostRatio('cpu');
    assert.equal(cpu.restoreToPrefill, MEASURED_CPU_SERVER.restoreMsPerToken / MEASURED_CPU_SERVER.prefillMsPerToken);
    assert.ok(cpu.restoreToPrefill < 0.01 && cpu.saveToPrefill > cpu.restoreToPrefill);
  });

  it('rejects what is not a ratio', () => {
    for (const bad of ['', 'gpu', '-0.1', 'NaN']) assert.throws(() => parseCostRatio(bad), RangeError, bad);
  });
});

describe('sim targets per ratio', () => {
  const config = (ttft: number, bytes: number) => ({
    prefill_tokens: 100,
    conversation_prefill_tokens: 100,
    ttft_mean_ms: ttft,
    bytes_written: bytes,
    disk_bytes_final: 10,
  });
  const results = (name: string, restore: number): BenchResults => ({
    cost_ratio: { name, restore_to_prefill: restore, save_to_prefill: restore },
    cost_model: { ...DEFAULT_COST_MODEL, cache_ram_mib: 8192, time_scale: 0 },
    workloads: {
      contention: {
        description: '',
        ideal_prefill_tokens: 100,
        ideal_conversation_prefill_tokens: 100,
        live_cache_bytes: 10,
        configs: { seed: config(1000, 1000), smart: config(550, 300), direct: config(1000, 0) } as any,
      },
    },
  });

  it('at a GPU ratio (0.1) checks issue 7: ttft ≤ 0.6 × seed and bytes ≤ 0.35 × seed', () => {
    const lines = targetChecks(results('0.1', 0.1));
    assert.ok(
      lines.includes('  PASS  contention: smart ttft mean / seed [ratio 0.1] (issue 7): 0.550 (≤ 0.6)'),
      lines.join('\n'),
    );
    assert.ok(
      lines.includes('  PASS  contention: smart bytes written / seed [ratio 0.1] (issue 7): 0.300 (≤ 0.35)'),
      lines.join('\n'),
    );
    assert.ok(!lines.some((l) => l.includes('(≤ 0.5)')), 'the 0.2 targets are not applied at 0.1');
  });

  it('at the default ratio (0.2) keeps the earlier targets, so 0.55 × seed misses 0.5', () => {
    const lines = targetChecks(results('0.2', 0.2));
    assert.ok(
      lines.includes('  MISS  contention: smart ttft mean / seed [ratio 0.2]: 0.550 (≤ 0.5)'),
      lines.join('\n'),
    );
    assert.ok(!lines.some((l) => l.includes('issue 7')));
  });

  it('at every ratio smart must not be slower or write more than seed', () => {
    const lines = targetChecks(results('cpu', 0.0023));
    assert.ok(lines.includes('  PASS  contention: smart ttft mean / seed [ratio cpu]: 0.550 (≤ 1)'), lines.join('\n'));
    assert.ok(
      lines.includes('  PASS  contention: smart bytes written / seed [ratio cpu]: 0.300 (≤ 1)'),
      lines.join('\n'),
    );
  });
});
