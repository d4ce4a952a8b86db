/**
 * The bench's agents workload: it refuses to run without the agent traces, and its displacement counts read the
 * simulator's events right (which request ran on which slot, and what it pushed out).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentMetrics } from '../../bench/agent-metrics.js';
import { loadAgentTraces } from '../../bench/agent-traces.js';
import { sidecheapWorkload } from '../../bench/agents.js';
import type { RequestResult } from '../../bench/driver.js';
import type { Job, Workload } from '../../bench/workloads.js';
import type { SimEvent } from '../../src/sim/index.js';

describe('agents workload', () => {
  it('fails clearly when the traces are missing', () => {
    assert.throws(
      () => loadAgentTraces('/nonexistent/agent-traces'),
      /agent traces in \/nonexistent\/agent-traces .*missing: claude-tool\/002-v1_messages\.json/,
    );
  });

  it('loads the captured templates', () => {
    const traces = loadAgentTraces();
    assert.equal(traces.claude[1].path, '/v1/messages');
    assert.ok(traces.codex[0].body.prompt_cache_key);
    assert.ok(traces.qwen[1].body.messages.some((m: { tool_calls?: unknown }) => m.tool_calls));
  });

  it('counts a side request that overwrote a live conversation, and the turn it displaced', () => {
    const jobs: Job[] = [
      { kind: 'turn', conversation: 'a', turn: 0 },
      { kind: 'turn', conversation: 'b', turn: 0 },
      { kind: 'small', model: 'm', seed: 1, side: 'memory' },
      { kind: 'turn', conversation: 'a', turn: 1 },
      { kind: 'turn', conversation: 'b', turn: 1 },
    ];
    const workload = { jobs, conversations: [] } as unknown as Workload;
    const result = (job: Job, cacheN: number, promptN: number): RequestResult => ({
      job,
      status: 200,
      ttftMs: 0,
      totalMs: 0,
      streamMs: 0,
      cacheN,
      promptN,
      promptTokens: cacheN + promptN,
      completionTokens: 8,
    });
    const results = [
      result(jobs[0]!, 0, 100),
      result(jobs[1]!, 0, 200),
      result(jobs[2]!, 0, 300),
      result(jobs[3]!, 0, 150),
      result(jobs[4]!, 207, 50),
    ];
    const chat = (slot: number, cache_n: number, prompt_n: number): SimEvent => ({
      type: 'chat',
      at: 0,
      model: 'm',
      slot,
      pinned: true,
      cache_n,
      prompt_n,
      predicted_n: 8,
      aborted: false,
      ram_hit: false,
    });
    // a on 0, b on 1, the side request on 0 (a's slot), a comes back to slot 0 from scratch, b stays resident on 1.
    const events = [chat(0, 0, 100), chat(1, 0, 200), chat(0, 0, 300), chat(0, 0, 150), chat(1, 207, 50)];
    const m = agentMetrics(workload, results, events);
    assert.equal(m.side_evictions, 1);
    assert.equal(m.main_turns_displaced, 1);
    assert.equal(m.displaced_by_side, 1);
    assert.equal(m.unmatched, 0);
    assert.equal(m.main_prefill_tokens, 100 + 200 + 150 + 50);
  });

  it('sidecheap: a one-off completion runs between the conversation and each memory extraction, on one client', () => {
    const w = sidecheapWorkload();
    assert.equal(w.concurrency, 1);
    assert.equal(w.slotsPerModel, 2);
    const sides = w.jobs.flatMap((j, i) => (j.kind === 'small' && j.side === 'memory' ? [i] : []));
    assert.ok(sides.length >= 3);
    for (const i of sides) {
      assert.deepEqual([w.jobs[i - 2]!.kind, (w.jobs[i - 1] as { side?: string }).side], ['turn', 'infill']);
      // The conversation has turns after every memory extraction but the last.
      if (i !== sides.at(-1)) assert.ok(w.jobs.slice(i).some((j) => j.kind === 'turn'));
    }
    // Every request builds from the traces: the memory extraction shares no prefix with the conversation.
    const sessions = w.agents!('m');
    const main = sessions.request(w.jobs[0]!);
    const memory = sessions.request(w.jobs[sides[0]!]!);
    assert.equal(main.api, 'chat');
    assert.notEqual(
      (memory.body.messages as Array<{ content: unknown }>)[0]!.content,
      (main.body.messages as Array<{ content: unknown }>)[0]!.content,
    );
  });
});
