/**
 * BACKEND_TYPE=auto probes each backend once and logs what it found; an explicit BACKEND_TYPE is used as given,
 * without probe requests.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { nthChatLine } from '../support/log-lines.js';
import { closedPortUrl } from '../support/net.js';
import { eventsOf } from '../support/sim-helpers.js';
import { startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';
import type { TappedStack } from '../support/tapped-stack.js';
import { words } from '../support/text.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle, SimOptions } from '../../src/sim/index.js';

const MODES: Array<{ mode: SimOptions['mode']; model: string }> = [
  { mode: 'llama-server', model: 'tiny' },
  { mode: 'llama-swap', model: 'a' },
  { mode: 'router', model: 'a' },
];

describe('BACKEND_TYPE=auto', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  for (const { mode, model } of MODES) {
    it(`detects ${mode} and logs it`, async () => {
      stack = await startStack({ sim: { mode, models: [{ id: model, nSlots: 2 }] }, env: { BACKEND_TYPE: 'auto' } });
      const line = await stack.logs.waitFor((l) => l.msg === 'backend kind detected', 5000, 'the detection line');
      assert.equal(line.kind, mode);
      assert.equal(line.backend, stack.sim.url);
      assert.equal(stack.logs.withMsg('backend kind detected').length, 1, 'probed once');
      const listening = stack.logs.withMsg('proxycache listening')[0]!;
      assert.deepEqual(listening.backends, [{ url: stack.sim.url, kind: mode }]);
    });
  }
});

describe('BACKEND_TYPE=auto, backend down at start-up', () => {
  it('is probed again on the next request once it is up, and its kind is used for slot actions', async () => {
    const late = await closedPortUrl();
    const stack = await startStack({ env: { LLAMA_URL: late, BACKEND_TYPE: 'auto' } });
    let sim: SimHandle | undefined;
    try {
      await stack.logs.waitFor((l) => l.msg === 'backend probe failed', 5000, 'the failed start-up probe');
      sim = await startSimulator({
        mode: 'llama-swap',
        models: [{ id: 'a', nSlots: 2 }],
        port: Number(new URL(late).port),
        slotSavePath: stack.cacheDir,
        cost: { timeScale: 0, kvBytesPerToken: 1000 },
      });
      const res = await stack.openai.chat.completions.create({
        model: 'a',
        messages: [{ role: 'user', content: words(60, 2) }],
        max_tokens: 2,
      });
      assert.equal(res.object, 'chat.completion');
      const detected = await stack.logs.waitFor((l) => l.msg === 'backend kind detected', 5000, 'the detection line');
      assert.equal(detected.kind, 'llama-swap');
      const line = await nthChatLine(stack.logs, 1);
      assert.equal((line.save as { ok: boolean }).ok, true, JSON.stringify(line.save));
      assert.deepEqual(
        sim.events.filter((e) => e.type === 'save').map((e) => e.model),
        ['a'],
      );
    } finally {
      await closeStack(stack);
      await sim?.close();
    }
  });
});

describe('explicit BACKEND_TYPE', () => {
  let tapped: TappedStack | undefined;
  afterEach(async () => {
    if (tapped) await closeTappedStack(tapped);
    tapped = undefined;
  });

  for (const { mode, model } of MODES) {
    it(`${mode}: used without probing, and slot actions are addressed for it`, async () => {
      // The proxy in front of a tap, so that every request it sends is seen.
      tapped = await startTappedStack({
        sim: { mode, models: [{ id: model, nSlots: 2 }] },
        env: { BACKEND_TYPE: mode },
      });
      const { stack, tap, logMark } = tapped;
      const lines = stack.logs.lines.slice(logMark);
      const paths = tap.requests.map((r) => r.path);
      assert.ok(
        !paths.some((p) => p === '/running' || p.startsWith('/models')),
        `probe requests sent: ${paths.join(', ')}`,
      );
      assert.equal(lines.filter((l) => l.msg === 'backend kind detected').length, 0);
      assert.deepEqual(lines.find((l) => l.msg === 'proxycache listening')?.backends, [{ url: tap.url, kind: mode }]);

      await stack.openai.chat.completions.create({
        model,
        messages: [{ role: 'user', content: words(60, 1) }],
        max_tokens: 2,
      });
      await stack.logs.waitFor(
        (l) => l.msg === 'chat' && (l.save as { ok?: boolean } | undefined)?.ok === true,
        2000,
        'a successful save',
      );
      const save = tap.requests.find((r) => r.path.includes('action=save'))!;
      if (mode === 'llama-server') {
        assert.match(save.path, /^\/slots\/0\?action=save$/);
      } else if (mode === 'llama-swap') {
        assert.match(save.path, new RegExp(`^/upstream/${model}/slots/0\\?action=save$`));
      } else {
        assert.match(save.path, /^\/slots\/0\?action=save&autoload=false$/);
        assert.equal(save.body.model, model);
      }
      assert.equal(eventsOf(stack.sim, 'save').at(-1)?.model, model);
    });
  }
});
