/**
 * Slot save / restore / erase against probe_slots.txt: numbers, id wrapping, prefix reuse after a restore, every
 * error case with its exact body, failed restores clearing the slot, model fingerprints, injected faults.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { chatBody, postJson, request } from '../../src/sim/sim-client.js';

const KV = 8208; // bytes per token of the captured model
const LONG = 'Multiply cut tail ran fall night draw mark clear ever part any field; '.repeat(40);
const err = (code: number, message: string, type = 'invalid_request_error'): string =>
  JSON.stringify({ error: { code, message, type } });

describe('sim slot actions', () => {
  let dir: string;
  let sim: SimHandle;
  const chat = (body: Record<string, unknown>) => postJson(sim.url, '/v1/chat/completions', body).then((r) => r.json());
  const action = (id: string | number, act: string | undefined, body?: unknown) =>
    request(sim.url, `/slots/${id}${act === undefined ? '' : `?action=${act}`}`, { method: 'POST', body });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-slots-'));
    sim = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'tiny', nSlots: 4 }],
      slotSavePath: dir,
      cacheRamMiB: 0,
      cost: { timeScale: 0, kvBytesPerToken: KV },
    });
  });
  after(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('saves prompt + reply − 1 tokens into {slot-save-path}/{filename}, sized 48 + n × KV', async () => {
    const first = await chat(chatBody(LONG, { max_tokens: 4, id_slot: 1 }));
    const n = first.usage.prompt_tokens + 4 - 1;
    const res = await action(1, 'save', { filename: 'a.bin' });
    assert.equal(res.status, 200);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ['id_slot', 'filename', 'n_saved', 'n_written', 'timings']);
    assert.deepEqual(Object.keys(body.timings), ['save_ms']);
    assert.equal(body.id_slot, 1);
    assert.equal(body.filename, 'a.bin');
    assert.equal(body.n_saved, n);
    assert.equal(body.n_written, 48 + n * KV);
    assert.equal((await stat(join(dir, 'a.bin'))).size, body.n_written);
    assert.deepEqual(sim.slotTokens('tiny', 1)?.length, n);
  });

  it('erases (n_erased, then 0) and saves an empty slot as 48 bytes', async () => {
    const n = sim.slotTokens('tiny', 1)!.length;
    assert.equal((await action(1, 'erase', {})).body, JSON.stringify({ id_slot: 1, n_erased: n }));
    assert.equal((await action(1, 'erase', {})).body, JSON.stringify({ id_slot: 1, n_erased: 0 }));
    const empty = (await action(2, 'save', { filename: 'empty.bin' })).json();
    assert.equal(empty.n_saved, 0);
    assert.equal(empty.n_written, 48);
  });

  it('restores into any slot; the exact prompt then gives cache_n = N−1, prompt_n = 1', async () => {
    const res = await action(2, 'restore', { filename: 'a.bin' });
    assert.equal(res.status, 200);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ['id_slot', 'filename', 'n_restored', 'n_read', 'timings']);
    assert.deepEqual(Object.keys(body.timings), ['restore_ms']);
    assert.equal(body.n_read, 48 + body.n_restored * KV);
    const again = await chat(chatBody(LONG, { max_tokens: 4, id_slot: 2 }));
    assert.equal(again.timings.cache_n, again.usage.prompt_tokens - 1);
    assert.equal(again.timings.prompt_n, 1);
  });

  it('reuses only the common prefix for a longer prompt, and nothing with cache_prompt false', async () => {
    await action(3, 'restore', { filename: 'a.bin' });
    const longer = await chat(chatBody(LONG + ' and some more words at the end', { max_tokens: 2, id_slot: 3 }));
    assert.ok(longer.timings.cache_n > 0 && longer.timings.cache_n < longer.usage.prompt_tokens - 1);
    await action(3, 'restore', { filename: 'a.bin' });
    const cold = await chat(chatBody(LONG, { max_tokens: 2, id_slot: 3, cache_prompt: false }));
    assert.equal(cold.timings.cache_n, 0);
    assert.equal(cold.timings.prompt_n, cold.usage.prompt_tokens);
  });

  it('wraps slot ids and echoes the id sent (6 → slot 2, −1 → slot 3, 99 → slot 3)', async () => {
    const n2 = sim.slotTokens('tiny', 2)!.length;
    const n3 = sim.slotTokens('tiny', 3)!.length;
    assert.notEqual(n2, n3);
    const six = (await action(6, 'save', { filename: 'x6.bin' })).json();
    assert.deepEqual([six.id_slot, six.n_saved], [6, n2]);
    const last = (await action(-1, 'save', { filename: 'xm1.bin' })).json();
    assert.deepEqual([last.id_slot, last.n_saved], [-1, n3]);
    assert.equal((await action(99, 'erase', {})).body, JSON.stringify({ id_slot: 99, n_erased: n3 }));
    const pinned = await chat(chatBody('pinned by a wrapped id', { max_tokens: 2, id_slot: 5 }));
    assert.equal(pinned.timings.cache_n, 0);
    assert.equal(sim.slotTokens('tiny', 1)!.length, pinned.usage.prompt_tokens + 1);
  });

  it('answers every error case with the captured status and body', async () => {
    const missing = 'Unable to restore slot: No available space in KV cache or invalid slot save file';
    const cases: [string | number, string | undefined, unknown, number, string][] = [
      [1, 'restore', { filename: 'does-not-exist.bin' }, 400, err(400, missing)],
      [0, 'save', { filename: '../x' }, 400, err(400, 'Invalid filename')],
      [0, 'save', { filename: 'sub/x.bin' }, 400, err(400, 'Invalid filename')],
      [0, 'save', { filename: '' }, 400, err(400, 'Invalid filename')],
      [0, 'save', {}, 500, err(500, "[json.exception.out_of_range.403] key 'filename' not found", 'server_error')],
      [
        0,
        'save',
        undefined,
        500,
        err(
          500,
          '[json.exception.parse_error.101] parse error at line 1, column 1: attempting to parse an empty input; check that your input string or stream contains the expected JSON',
          'server_error',
        ),
      ],
      [0, 'bogus', { filename: 'x.bin' }, 400, err(400, 'Invalid action')],
      [0, undefined, { filename: 'x.bin' }, 400, err(400, 'Invalid action')],
      ['abc', 'save', { filename: 'x.bin' }, 400, err(400, 'Invalid slot ID')],
    ];
    for (const [id, act, body, status, expected] of cases) {
      const res = await action(id, act, body);
      assert.equal(res.status, status, `${id} ${act} ${JSON.stringify(body)}`);
      assert.equal(res.body, expected);
      assert.equal(res.headers.server, 'llama.cpp');
    }
  });

  it('empties the slot when a restore fails', async () => {
    await chat(chatBody(LONG, { max_tokens: 2, id_slot: 0 }));
    assert.ok(sim.slotTokens('tiny', 0)!.length > 0);
    const res = await action(0, 'restore', { filename: 'nope.bin' });
    assert.equal(res.status, 400);
    assert.deepEqual(sim.slotTokens('tiny', 0), []);
    const slots = (await request(sim.url, '/slots')).json();
    assert.equal(slots[0].n_prompt_tokens, 0);
    assert.ok(sim.events.some((e) => e.type === 'restore' && !e.ok && e.filename === 'nope.bin'));
  });

  it('refuses a file written by another model, like a missing file', async () => {
    const other = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'other', nSlots: 1 }],
      slotSavePath: dir,
      cost: { timeScale: 0, kvBytesPerToken: KV },
    });
    try {
      const res = await postJson(other.url, '/slots/0?action=restore', { filename: 'a.bin' });
      assert.equal(res.status, 400);
      assert.equal(
        res.json().error.message,
        'Unable to restore slot: No available space in KV cache or invalid slot save file',
      );
    } finally {
      await other.close();
    }
  });

  it('keeps files across a restart but loses slot contents', async () => {
    await action(1, 'restore', { filename: 'a.bin' });
    await sim.restart();
    assert.deepEqual(sim.slotTokens('tiny', 1), []);
    assert.equal((await action(1, 'restore', { filename: 'a.bin' })).status, 200);
  });

  it('fails the next calls of an injected fault with the real error shape', async () => {
    sim.injectFault({ action: 'save', status: 500, message: 'disk full', times: 2 });
    for (let i = 0; i < 2; i++) {
      const res = await action(1, 'save', { filename: 'f.bin' });
      assert.equal(res.status, 500);
      assert.equal(res.body, err(500, 'disk full', 'server_error'));
    }
    assert.equal((await action(1, 'save', { filename: 'f.bin' })).status, 200);
    sim.injectFault({ action: 'chat', status: 503, message: 'Loading model' });
    const chatRes = await postJson(sim.url, '/v1/chat/completions', chatBody('x'));
    assert.equal(chatRes.body, err(503, 'Loading model', 'unavailable_error'));
    sim.injectFault({ action: 'restore', status: 400 });
    assert.equal((await action(1, 'restore', { filename: 'a.bin' })).status, 400);
    assert.deepEqual(sim.slotTokens('tiny', 1), []);
  });

  it('counts saves, restores and bytes', () => {
    const s = sim.stats();
    assert.ok(s.saves >= 5 && s.restores >= 4);
    assert.ok(s.bytesWritten > 0 && s.bytesRead > 0 && s.reusedTokens > 0 && s.prefillTokens > 0);
  });
});

describe('sim slot actions without --slot-save-path, and on sliding-window models', () => {
  it('answers 501 not_supported_error', async () => {
    const sim = await startSimulator({ mode: 'llama-server', models: [{ id: 'tiny' }], cost: { timeScale: 0 } });
    try {
      const res = await postJson(sim.url, '/slots/0?action=save', { filename: 'a.bin' });
      assert.equal(res.status, 501);
      assert.equal(
        res.body,
        err(501, 'This server does not support slots action. Start it with --slot-save-path', 'not_supported_error'),
      );
    } finally {
      await sim.close();
    }
  });

  it("reuses a reply's tokens from its text unless replyTextTokenizesDifferently", async () => {
    for (const differs of [false, true]) {
      const sim = await startSimulator({
        mode: 'llama-server',
        models: [{ id: 'm', nSlots: 2, replyTextTokenizesDifferently: differs }],
        cost: { timeScale: 0 },
      });
      try {
        const first = (
          await postJson(sim.url, '/v1/chat/completions', chatBody(LONG, { max_tokens: 10, id_slot: 0 }))
        ).json();
        const messages = [
          { role: 'user', content: LONG },
          { role: 'assistant', content: first.choices[0].message.content },
          { role: 'user', content: 'and then?' },
        ];
        const next = (await postJson(sim.url, '/v1/chat/completions', { messages, max_tokens: 2, id_slot: 0 })).json();
        const promptTokens = first.usage.prompt_tokens;
        // The slot holds the prompt and the reply but its last token.
        if (differs) assert.equal(next.timings.cache_n, promptTokens, JSON.stringify(next.timings));
        else
          assert.equal(
            next.timings.cache_n,
            promptTokens + first.timings.predicted_n - 1,
            JSON.stringify(next.timings),
          );
      } finally {
        await sim.close();
      }
    }
  });

  it('restores successfully but gives no reuse when restoreGivesNoReuse', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-swa-'));
    const sim = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'swa', nSlots: 2, restoreGivesNoReuse: true }],
      slotSavePath: dir,
      cacheRamMiB: 0,
      cost: { timeScale: 0 },
    });
    try {
      await postJson(sim.url, '/v1/chat/completions', chatBody(LONG, { max_tokens: 2, id_slot: 0 }));
      await postJson(sim.url, '/slots/0?action=save', { filename: 's.bin' });
      assert.equal((await postJson(sim.url, '/slots/1?action=restore', { filename: 's.bin' })).status, 200);
      const after = (
        await postJson(sim.url, '/v1/chat/completions', chatBody(LONG, { max_tokens: 2, id_slot: 1 }))
      ).json();
      assert.equal(after.timings.cache_n, 0);
      const next = (
        await postJson(sim.url, '/v1/chat/completions', chatBody(LONG, { max_tokens: 2, id_slot: 1 }))
      ).json();
      assert.equal(next.timings.cache_n, next.usage.prompt_tokens - 1);
    } finally {
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
