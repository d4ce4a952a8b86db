import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { countSlotActions } from '../../bench/proxy-process.js';
import type { SlotActionCounts } from '../../bench/backend.js';
import { summarize } from '../../bench/metrics.js';
import type { RequestResult } from '../../bench/driver.js';
import type { Workload } from '../../bench/workloads.js';

const fresh = (): SlotActionCounts => ({ saves: 0, restores: 0, bytesWritten: 0, bytesRead: 0 });
const save = (tokens: number) => ({ ok: true, ms: 9, tokens, bytes: tokens * 4112 });

describe("the bench's counts from the proxy's log lines", () => {
  it("counts a rescue's save and the prefill of its replay, which no client's answer shows", () => {
    const counts = fresh();
    countSlotActions({ msg: 'chat', evict_save: save(2700), restore: { ok: true, bytes: 9000 } }, counts);
    countSlotActions(
      { msg: "saved from the server's RAM cache", cache_n: 2650, prompt_n: 47, save: save(2697) },
      counts,
    );
    countSlotActions(
      { msg: "saved from the server's RAM cache", cache_n: 2700, prompt_n: 1, save: save(2700) },
      counts,
    );
    assert.equal(counts.saves, 3);
    assert.equal(counts.restores, 1);
    assert.equal(counts.tokensWritten, 2700 + 2697 + 2700);
    assert.equal(counts.replayPrefillTokens, 48);
  });

  it('adds the replays to what the backend prefilled, for the conversations too', () => {
    const workload = { name: 'roundrobin', jobs: [{ kind: 'turn', conversation: 'c0', turn: 0 }] } as Workload;
    const results = [
      { job: workload.jobs[0], promptN: 3000, cacheN: 0, ttftMs: 500, totalMs: 900, streamMs: 400 },
    ] as unknown as RequestResult[];
    const proc = { cpu: 0, rss: 0, disk: 0 };
    const without = summarize(workload, results, fresh(), 0, 1000, proc);
    const withReplays = summarize(workload, results, { ...fresh(), replayPrefillTokens: 48 }, 0, 1000, proc);
    assert.equal(without.prefill_tokens, 3000);
    assert.equal(without.replay_prefill_tokens, 0);
    assert.equal(withReplays.prefill_tokens, 3048);
    assert.equal(withReplays.conversation_prefill_tokens, 3048);
    assert.equal(withReplays.replay_prefill_tokens, 48);
  });
});
