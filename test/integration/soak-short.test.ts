/**
 * A short soak (`npm run soak` at CI size): 40 clients on 4 slots for 10 s against the proxy and the simulator as
 * child processes, one in ten cutting its streams, the fuzzer, and the backend killed and started again halfway.
 * Every check of the full soak must pass: nothing lost, every failure explained by the restart, slots free and
 * descriptors and memory back near the baseline afterwards, a final health check and chat answered, META_DIR and
 * CACHE_DIR consistent, every fuzz case answered as expected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReport } from '../../bench/soak/report.js';
import { runSoak } from '../../bench/soak/soak.js';
import { withDeadline } from '../support/deadline.js';

describe('soak, short', () => {
  it('40 clients, 10 s, a backend restart and the fuzzer: every soak check passes', async () => {
    const report = await withDeadline(
      runSoak({
        durationS: 10,
        clients: 40,
        slots: 4,
        restartAtS: 5,
        downMs: 500,
        deadlineMs: 20_000,
        bigWords: { min: 600, max: 1500 },
        timeScale: 0.1,
        seed: 7,
        skipFuzz: new Set(),
        log: () => undefined,
      }),
      50_000,
      'the short soak',
    );
    const failed = report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    assert.deepEqual(failed, [], formatReport(report));
    assert.ok(report.chats.answered > 100, `${report.chats.answered} chats answered`);
    assert.ok(report.restart, 'the backend was restarted');
  });
});
