/** ReplayReplies: whether a rescue's replay carries the answer's text, judged on what such replays brought back. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RECHECK_EVERY, ReplayReplies } from '../../src/slots/replay-reply.js';

/** A replay of a 2,000-token prompt and its 40-token reply that reused `reply` of the reply's tokens. */
const replayed = (reply: number, replyTokens = 40) => ({
  stateTokens: 2000 + replyTokens - 1,
  replyTokens,
  reused: 2000 + reply,
});

describe('ReplayReplies', () => {
  it('carries the text until it brings back less than half of the reply, then one replay in RECHECK_EVERY', () => {
    const r = new ReplayReplies();
    assert.equal(r.withReply(0, 'm'), true, 'nothing judged yet');
    assert.equal(r.note(0, 'm', replayed(39)), undefined, 'came back, as believed: no change');
    assert.equal(r.withReply(0, 'm'), true);
    assert.deepEqual(r.note(0, 'm', replayed(19)), { comesBack: false, reusedOfReply: 19 });
    const forms = Array.from({ length: 2 * RECHECK_EVERY }, () => r.withReply(0, 'm'));
    assert.deepEqual(
      forms.map((withReply, i) => (withReply ? i : -1)).filter((i) => i >= 0),
      [RECHECK_EVERY - 1, 2 * RECHECK_EVERY - 1],
    );
    assert.deepEqual(r.note(0, 'm', replayed(20)), { comesBack: true, reusedOfReply: 20 }, 'half of it: it comes back');
    assert.equal(r.withReply(0, 'm'), true);
  });

  it('judges each backend and model apart, and not on a reply too short to tell', () => {
    const r = new ReplayReplies();
    assert.deepEqual(r.note(0, 'm', replayed(2)), { comesBack: false, reusedOfReply: 2 });
    assert.equal(r.withReply(0, 'm'), false);
    assert.deepEqual(r.withoutText(0), ['m'], 'for the status API');
    assert.deepEqual(r.withoutText(1), []);
    assert.equal(r.withReply(1, 'm'), true, 'another backend');
    assert.equal(r.withReply(0, 'other'), true, 'another model');
    assert.equal(r.note(1, 'm', replayed(0, 7)), undefined, 'a 7-token reply tells nothing');
    assert.equal(r.withReply(1, 'm'), true);
  });
});
