import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { realTargetChecks } from '../../bench/real-report.js';
import { afterEveryAnswerBytes } from '../../bench/metrics.js';
import type { RealResults } from '../../bench/real-run.js';
import type { RealWorkload } from '../../bench/real-workloads.js';
import type { RequestResult } from '../../bench/driver.js';

const KV = 4112;
const HEADER = 144;

/** Two turns of one conversation and a small request, answered with these prompt and reply tokens. */
const workload = {
  jobs: [
    { kind: 'turn', conversation: 'c0', turn: 0 },
    { kind: 'small', model: 'm', seed: 1 },
    { kind: 'turn', conversation: 'c0', turn: 1 },
  ],
} as unknown as RealWorkload;
const answers = (turn0: number, turn1: number) =>
  [
    { promptTokens: turn0, completionTokens: 32 },
    { promptTokens: 40, completionTokens: 32 },
    { promptTokens: turn1, completionTokens: 32 },
  ] as unknown as RequestResult[];
const saved = (...tokens: number[]) => ({
  saves: tokens.length,
  restores: 0,
  bytesWritten: tokens.reduce((sum, t) => sum + t * KV + HEADER, 0),
  bytesRead: 0,
  tokensWritten: tokens.reduce((sum, t) => sum + t, 0),
});

describe('the real bench: bytes written against saving after every answer', () => {
  it("counts what saving every big answer would write for the run's own answers, headers measured on its saves", () => {
    // Both turns' states (prompt + reply − 1), not the small request's.
    assert.equal(
      afterEveryAnswerBytes(workload, answers(2000, 2500), saved(2031, 2531), KV),
      saved(2031, 2531).bytesWritten,
    );
    // One save of the second state: the header is measured on it.
    assert.equal(
      afterEveryAnswerBytes(workload, answers(2000, 2500), saved(2531), KV),
      (2031 + 2531) * KV + 2 * HEADER,
    );
    assert.equal(afterEveryAnswerBytes(workload, answers(2000, 2500), saved(), KV), undefined, 'nothing saved');
    const untold = { ...saved(2531), tokensWritten: NaN };
    assert.equal(
      afterEveryAnswerBytes(workload, answers(2000, 2500), untold, KV),
      undefined,
      "a save's tokens unknown",
    );
  });

  /** One bursty workload where `always` and `proxycache` saved these states of their own answers. */
  function results(proxycache: { answers: [number, number]; saved: number[] }): RealResults {
    const config = (turns: [number, number], tokens: number[]) => ({
      prefill_tokens: 31_500,
      ideal_prefill_tokens: 31_400,
      ttft_mean_ms: 700,
      bytes_written: saved(...tokens).bytesWritten,
      after_every_answer_bytes: afterEveryAnswerBytes(workload, answers(...turns), saved(...tokens), KV),
      disk_bytes_final: 100e6,
      live_cache_bytes: 100e6,
    });
    const configs = {
      always: config([2000, 2500], [2031, 2531]),
      proxycache: config(proxycache.answers, proxycache.saved),
    };
    return { modes: { default: { workloads: { bursty: { configs } } } } } as unknown as RealResults;
  }
  const bytesLine = (lines: string[]) => lines.find((l) => l.includes('bytes written / saving after every answer'));

  it('replies 4 tokens longer than in the always run, saved after every answer: no surplus', () => {
    const lines = realTargetChecks(results({ answers: [2000, 2504], saved: [2031, 2535] }));
    assert.match(bytesLine(lines) ?? '', /^ {2}PASS .*: 1\.00000 \(≤ 1\)$/);
    const info = lines.find((l) => l.includes('info  [default] bursty: bytes written / always'));
    assert.match(info ?? '', /always 1\.00088 .*; always \/ saving after every answer 1\.00000$/);
  });

  it('a state saved twice is a surplus, whatever the replies', () => {
    const lines = realTargetChecks(results({ answers: [2000, 2500], saved: [2031, 2531, 2531] }));
    assert.match(bytesLine(lines) ?? '', /^ {2}MISS .*: 1\.55\d{3} \(≤ 1\)$/);
  });

  it('saving one answer of two writes about half', () => {
    const lines = realTargetChecks(results({ answers: [2000, 2500], saved: [2531] }));
    assert.match(bytesLine(lines) ?? '', /^ {2}PASS .*: 0\.55\d{3} \(≤ 1\)$/);
  });
});
