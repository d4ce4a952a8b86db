/**
 * RamRescues: answers left to the server's RAM cache are saved from it shortly before their loss window ends,
 * unless the conversation took them back first; a miss stops leaving what the slots still hold; shutdown rescues
 * what waits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { RamRescues } from '../../src/slots/ram-rescue.js';
import type { Replay, RescueOutcome } from '../../src/slots/ram-rescue.js';
import type { SlotContent } from '../../src/slots/slot-state.js';
import { eventually } from '../support/deadline.js';
import { held, slot } from '../support/slot-fixtures.js';

const replay: Replay = (_idSlot, _mark, withReply) => ({ path: '/v1/chat/completions', body: '{}', withReply });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rescues recorded by hand; `outcomes` says what each successive call answers (true once the list runs out). */
function recorder(outcomes: RescueOutcome[] = []) {
  const calls: Array<{ content: SlotContent; at: number }> = [];
  const warnings: unknown[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
  const rescues = (windowMs: number) =>
    new RamRescues({
      windowMs,
      log,
      rescue: (_backend, content) => {
        calls.push({ content, at: performance.now() });
        return Promise.resolve(outcomes.shift() ?? true);
      },
    });
  return { calls, warnings, rescues };
}

/** A task left to the RAM cache on slot 0 that ended with `content`. */
function answered(rescues: RamRescues, content: SlotContent): void {
  const s = slot(0);
  rescues.taskRunning(s, replay);
  assert.equal(rescues.leavesToRam(s), true);
  rescues.taskEnded(s, content);
  assert.equal(rescues.leavesToRam(s), false);
}

/** An answer left to the RAM cache, which a launch then moved there: its rescue is armed. */
function clearedIntoRam(rescues: RamRescues, nTokens: number, model = 'm'): SlotContent {
  const content = held(nTokens, { key: `${model}-${nTokens}`, model });
  answered(rescues, content);
  rescues.cleared(content);
  return content;
}

describe('RamRescues', () => {
  it('rescues a cleared answer shortly before its window ends, once', async () => {
    const { calls, rescues } = recorder();
    const r = rescues(700); // due 700 - 500 = 200 ms after the answer
    const content = held(100);
    const start = performance.now();
    answered(r, content);
    assert.equal(r.leftToRam(content), true, 'a launch may clear it unsaved');
    r.cleared(content);
    r.cleared(content); // noted twice: one rescue
    assert.equal(r.waiting, 1);
    await sleep(100);
    assert.equal(calls.length, 0, 'not before it is due');
    await sleep(250);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.content, content);
    assert.ok(calls[0]!.at - start >= 190, `rescued after ${calls[0]!.at - start} ms`);
    assert.equal(r.waiting, 0);
  });

  it('does nothing for an answer its conversation took back, one never cleared, or one not left to the RAM cache', async () => {
    const { calls, rescues } = recorder();
    const r = rescues(520);
    const taken = clearedIntoRam(r, 100);
    r.taken(taken);
    const neverCleared = held(200);
    answered(r, neverCleared);
    const notLeft = held(300);
    r.cleared(notLeft);
    assert.equal(r.leftToRam(notLeft), false);
    const unknownEnd = slot(1);
    r.taskRunning(unknownEnd, replay);
    r.taskEnded(unknownEnd, undefined);
    await sleep(150);
    assert.deepEqual(calls, []);
  });

  it('after a miss, what is still in a slot is saved before a launch clears it; what was cleared keeps its rescue', async () => {
    const { calls, rescues } = recorder();
    const r = rescues(550);
    const inRam = clearedIntoRam(r, 100);
    const inSlot = held(200);
    answered(r, inSlot);
    r.distrust();
    assert.equal(r.leftToRam(inSlot), false);
    await sleep(150);
    assert.deepEqual(
      calls.map((c) => c.content),
      [inRam],
    );
  });

  it('tries a failed rescue again, then warns that a restart would lose the conversation', async () => {
    const { calls, warnings, rescues } = recorder([false, false, false]);
    const r = rescues(500);
    clearedIntoRam(r, 100);
    await sleep(700);
    assert.equal(calls.length, 3);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(String((warnings[0] as { msg: string }).msg), /could not be saved/);
  });

  it("a rescue that had to wait ('later': no room while tasks run) is tried again without using up a try", async () => {
    const { calls, warnings, rescues } = recorder(['later', 'later', 'later', 'later', false, true]);
    const r = rescues(500);
    const content = clearedIntoRam(r, 100);
    await sleep(1400);
    assert.equal(calls.length, 6, 'four waits, a failed try, then saved');
    assert.ok(calls.every((call) => call.content === content));
    // Due at once (500 ms window, 500 ms lead), then every 200 ms: the fourth wait is past the window, told once.
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(String((warnings[0] as { msg: string }).msg), /waits past its loss window/);
    assert.equal(r.waiting, 0);
  });

  it("rescueNow: what waits in one model's RAM cache is rescued at once (its model is about to be unloaded)", async () => {
    const { calls, rescues } = recorder();
    const r = rescues(60_000);
    const first = clearedIntoRam(r, 100, 'a');
    const second = clearedIntoRam(r, 200, 'a');
    clearedIntoRam(r, 300, 'b');
    await r.rescueNow(1, 'a');
    assert.equal(calls.length, 0, 'another backend');
    await r.rescueNow(0, 'a');
    assert.deepEqual(
      calls.map((call) => call.content),
      [first, second],
    );
    assert.equal(r.waiting, 1, "model b's waits for its timer");
  });

  it('a model no longer loaded: what waits in its RAM cache is given up and told, and never replayed', async () => {
    const { calls, warnings, rescues } = recorder(['lost']);
    const r = rescues(60_000);
    const unloadedUnseen = clearedIntoRam(r, 100, 'a');
    clearedIntoRam(r, 200, 'b');
    r.modelsLoaded(0, new Set(['a'])); // b was unloaded
    assert.equal(r.waiting, 1);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(String((warnings[0] as { msg: string }).msg), /was lost when its model was unloaded/);
    // Then a is unloaded unseen: its rescue finds the model gone ('lost'); told, not tried again.
    await r.close();
    assert.deepEqual(
      calls.map((call) => call.content),
      [unloadedUnseen],
    );
    assert.equal(warnings.length, 2, JSON.stringify(warnings));
    assert.equal(r.waiting, 0);
  });

  it('close() rescues what waits at once, and leaves nothing more to the RAM cache', async () => {
    const { calls, rescues } = recorder();
    const r = rescues(60_000);
    clearedIntoRam(r, 100);
    await r.close();
    assert.equal(calls.length, 1);
    assert.equal(r.enabled, false);
    const later = held(200);
    answered(r, later);
    assert.equal(r.leftToRam(later), false);
  });

  it('close() waits for a rescue its timer started while the shutdown rescued another', async () => {
    const ended: SlotContent[] = [];
    const r = new RamRescues({
      windowMs: 600, // due 100 ms after the answer
      log: pino({ level: 'silent' }),
      rescue: async (_backend, content) => {
        await sleep(200);
        ended.push(content);
        return true;
      },
    });
    const first = clearedIntoRam(r, 100);
    const second = clearedIntoRam(r, 200);
    // The shutdown takes the first at once (200 ms); the second's timer starts it meanwhile, at 100 ms.
    await r.close();
    assert.deepEqual(ended, [first, second], 'both rescues over when close() resolves');
  });

  it("a rescue queued behind one that carries the answer's text goes as that replay tells (its form is chosen as it is sent)", async () => {
    const forms: boolean[] = [];
    let queue: Promise<unknown> = Promise.resolve();
    const r: RamRescues = new RamRescues({
      windowMs: 600, // due 100 ms after the answer
      log: pino({ level: 'silent' }),
      // One at a time, as the launch gate or a slot lets them through; a replay with the text brings back 13 of the
      // reply's 48 tokens.
      rescue: (_backend, content, chosen) => {
        const turn = queue.then(async () => {
          await sleep(20);
          const call = chosen(0);
          forms.push(call.withReply);
          r.noteReplayed(content, call.withReply, 1013);
          return true as const;
        });
        queue = turn;
        return turn;
      },
    });
    for (const i of [0, 1]) {
      const s = slot(i);
      const content = held(1047, { key: `queued-${i}` });
      r.taskRunning(s, replay);
      r.taskEnded(s, content, 48);
      r.cleared(content);
    }
    // Both timers fire at about the same moment; the second rescue waits for the first one's replay.
    await eventually(() => forms.length >= 2, 5000, 'both rescues');
    assert.deepEqual(forms, [true, false]);
    await r.close();
  });

  it("replays carry the answer's text until one brings back less than half of the reply; then one in 8 does, to see a change", async () => {
    const lines: Array<{ msg: string; reused_of_reply?: number }> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const forms: boolean[] = [];
    let textComesBack = false;
    const r: RamRescues = new RamRescues({
      windowMs: 60_000,
      log,
      rescue: (_backend, content, chosen) => {
        const call = chosen(0);
        forms.push(call.withReply);
        // A 1,000-token prompt and a 48-token reply (1,047 tokens held): with the text, the replay reuses the prompt
        // and as much of the reply as its text tokenizes to the generated tokens.
        r.noteReplayed(content, call.withReply, call.withReply && textComesBack ? 1047 : 1013);
        return Promise.resolve(true);
      },
    });
    const rescueOne = async () => {
      const s = slot(0);
      const content = held(1047, { key: `k${forms.length}` });
      r.taskRunning(s, replay);
      r.taskEnded(s, content, 48);
      r.cleared(content);
      await r.saveAllNow();
    };
    for (let i = 0; i < 8; i++) await rescueOne();
    assert.deepEqual(forms, [true, false, false, false, false, false, false, false]);
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.match(lines[0]!.msg, /did not bring back most of its tokens/);
    assert.equal(lines[0]!.reused_of_reply, 13);
    textComesBack = true;
    await rescueOne(); // the 8th without: this one carries it again, and it comes back
    await rescueOne();
    assert.deepEqual(forms.slice(8), [true, true]);
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.match(lines[1]!.msg, /brings its tokens back again/);
  });
});
