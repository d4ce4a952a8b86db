/**
 * The real bench end to end at tiny sizes against the real llama-server (skipped when there is none): the
 * calibration measures the model, the ideal run and three configs produce results in the documented shape, and the
 * bytes the proxy's logs report as saved are the bytes llama-server wrote.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { calibrate } from '../bench/calibrate.js';
import { realTargetChecks } from '../bench/real-report.js';
import { runRealBench } from '../bench/real-run.js';
import { withDeadline } from '../test/support/deadline.js';
import { locateLlamaServer } from '../test/support/real-server.js';

const binary = locateLlamaServer();
const skip = 'skip' in binary ? binary.skip : false;

describe('real bench smoke run', { skip, timeout: 120_000 }, () => {
  let root: string | undefined;
  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('calibration: KV bytes per token from the save files, a restore far cheaper than a prefill', async () => {
    if ('skip' in binary) return;
    root ??= await mkdtemp(join(tmpdir(), 'proxycache-real-smoke-'));
    const c = await withDeadline(calibrate(binary, root, { samples: 1, words: 800 }), 60_000, 'the calibration');
    assert.ok(c.prompt_tokens > 700, JSON.stringify(c));
    assert.ok(c.kv_bytes_per_token > 0 && c.prefill_tokens_per_s > 0 && c.decode_ms_per_token > 0, JSON.stringify(c));
    if (binary.model.endsWith('tiny-chat.gguf'))
      assert.equal(
        Math.round(c.kv_bytes_per_token),
        4112,
        'the shared model: 4,112 bytes per token (plus a small file header)',
      );
    assert.ok(c.restore_to_prefill_ratio < 0.5, `restore/prefill ${c.restore_to_prefill_ratio}`);
  });

  it('roundrobin on -np 2, direct and through the proxy: ideal measured, saves counted as the server wrote them, bytes against saving after every answer', async () => {
    if ('skip' in binary) return;
    root ??= await mkdtemp(join(tmpdir(), 'proxycache-real-smoke-'));
    const out = join(root, 'real.json');
    const lines: string[] = [];
    const results = await withDeadline(
      runRealBench(
        {
          binary,
          modes: ['np2'],
          configs: ['direct-8g', 'relay-8g', 'always', 'proxycache'],
          workloads: ['roundrobin'],
          size: { startWords: 600, turnWords: 30, turns: 2, restartRounds: 2, restartGapMs: 0, maxTokens: 8 },
          sizeName: 'smoke',
          out,
          calibrationSamples: 0,
        },
        (line) => lines.push(line),
      ),
      100_000,
      'the real bench',
    );
    assert.deepEqual(
      JSON.parse(await readFile(out, 'utf8')),
      JSON.parse(JSON.stringify(results)),
      'the file holds what runRealBench returned',
    );

    const w = results.modes.np2!.workloads.roundrobin!;
    assert.ok(w.ideal_prefill_tokens > 0 && w.ideal_prefill_tokens <= w.ideal_prompt_tokens, JSON.stringify(w));
    assert.ok(w.small_cache_mib >= 1);
    const { 'direct-8g': direct, 'relay-8g': relayed, always, proxycache } = w.configs;
    assert.ok(direct && relayed && always && proxycache, Object.keys(w.configs).join(','));
    for (const m of [direct, relayed, proxycache]) {
      assert.equal(m.ideal_prefill_tokens, w.ideal_prefill_tokens);
      assert.ok(m.prefill_tokens > 0 && m.ttft_mean_ms > 0, JSON.stringify(m));
    }
    assert.deepEqual(proxycache.server_args, ['-np', '2', '--cache-ram', String(w.small_cache_mib)]);
    assert.deepEqual(direct.server_args, ['-np', '2']);
    assert.equal(direct.bytes_written, 0);
    assert.equal(direct.disk_bytes_final, 0);
    // The bare relay changes nothing but the hop: the same server flags, nothing saved.
    assert.deepEqual(relayed.server_args, direct.server_args);
    assert.equal(relayed.saves + relayed.bytes_written + relayed.disk_bytes_final, 0);

    // 6 conversations on 2 slots: the proxy saves what it evicts. Its logs say how many bytes; the server's
    // write count (files, plus its HTTP answers and logs) must agree within those few hundred kilobytes.
    assert.ok(proxycache.saves > 0 && proxycache.bytes_written > 0, JSON.stringify(proxycache));
    const unexplained = proxycache.server_write_bytes - proxycache.bytes_written;
    assert.ok(
      unexplained >= 0 && unexplained < 2e6,
      `server wrote ${proxycache.server_write_bytes} bytes, the proxy logged ${proxycache.bytes_written}`,
    );
    assert.ok(proxycache.disk_bytes_final > 0 && proxycache.disk_bytes_final <= proxycache.bytes_written);
    // The reference of the bytes target: what saving after every answer writes for a run's own answers (prompt and
    // reply but the last token each, a header per file). `always` saves after every answer: to the byte.
    assert.equal(always.after_every_answer_bytes, always.bytes_written, JSON.stringify(always));
    assert.ok(proxycache.bytes_written <= proxycache.after_every_answer_bytes!, JSON.stringify(proxycache));
    assert.equal(direct.after_every_answer_bytes, undefined, 'nothing saved, no reference');
    assert.ok(
      lines.some((l) => l.startsWith('[np2] roundrobin / proxycache:')),
      lines.join('\n'),
    );
    assert.ok(
      realTargetChecks(results).some((l) => /info {2}\[np2\] roundrobin: ttft mean relay-8g \/ direct-8g \d/.test(l)),
      'the hop is reported beside the targets',
    );
  });
});
