/**
 * What the proxy (and the simulator standing in for llama-server everywhere else) assumes about llama-server,
 * checked on the real binary and, with the same requests, on the simulator. A fact the simulator gets wrong is a
 * `todo` on its side: the bench and the integration tests are only as good as it.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { locateLlamaServer } from '../test/support/real-server.js';
import { startTarget, type Target } from '../test/support/server-target.js';
import { words } from '../test/support/text.js';

const where = locateLlamaServer();

async function post(t: Target, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

async function chat(
  t: Target,
  seed: number,
  extra: Record<string, unknown> = {},
  count = 700,
): Promise<{ cache_n: number; prompt_n: number; predicted_n: number }> {
  const res = await post(t, '/v1/chat/completions', {
    model: 'tiny',
    messages: [{ role: 'user', content: words(count, seed) }],
    max_tokens: 8,
    temperature: 0,
    ...extra,
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.timings;
}

/** Tokens in each slot's KV as GET /slots reports them (0 for a slot that never served a task). */
async function slotTokens(t: Target): Promise<number[]> {
  const res = await fetch(`${t.url}/slots`, { signal: AbortSignal.timeout(5000) });
  const slots = (await res.json()) as Array<{ id: number; n_prompt_tokens?: number }>;
  return slots.map((s) => s.n_prompt_tokens ?? 0);
}

/** Sends `request` (raw HTTP/1.1) on a fresh connection: did the server close it within `ms` of the whole answer? */
async function closesAfter(t: Target, request: string, ms = 1000): Promise<boolean> {
  const { hostname, port } = new URL(t.url);
  const socket = net.connect(Number(port), hostname);
  let received = '';
  const closed = await new Promise<boolean>((resolve) => {
    // No whole answer within 30 s: the status check below says what came.
    setTimeout(() => resolve(false), 30_000).unref();
    let answered = false;
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (answered || !answerComplete(received)) return;
      answered = true;
      setTimeout(() => resolve(false), ms);
    });
    socket.on('end', () => resolve(true));
    socket.on('error', () => resolve(true));
    socket.write(request);
  });
  socket.destroy();
  assert.match(received, /^HTTP\/1\.1 200/, received.slice(0, 200));
  return closed;
}

/** Whether `raw` holds a whole answer (chunked, or as long as its Content-Length). */
function answerComplete(raw: string): boolean {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /^content-length: (\d+)$/im.exec(raw.slice(0, end));
  if (length) return raw.length - end - 4 >= Number(length[1]);
  return raw.endsWith('\r\n0\r\n\r\n');
}

/** The simulator's known divergences from the real server, as node:test todo reasons. */
const SIM_TODO: Record<string, string> = {};

for (const kind of ['llama-server', 'simulator'] as const) {
  const skip = kind === 'llama-server' && 'skip' in where ? where.skip : false;
  const todo = (fact: string) => (kind === 'simulator' ? SIM_TODO[fact] : undefined);

  describe(`${kind} with -np 2: slot facts the proxy relies on`, { skip }, () => {
    let t: Target;
    before(async () => {
      t = await startTarget(kind, 2);
    });
    after(() => t?.close());

    it('a save writes prompt + generated − 1 tokens, as GET /slots reports them', async () => {
      const timings = await chat(t, 1, { id_slot: 1 });
      const expected = timings.cache_n + timings.prompt_n + timings.predicted_n - 1;
      assert.equal((await slotTokens(t))[1], expected);
      const save = await post(t, '/slots/1?action=save', { filename: 'np-fact' });
      assert.equal(save.status, 200);
      assert.equal(save.body.n_saved, expected);
    });

    it('slot ids wrap modulo the slot count, and the answer echoes the id sent', async () => {
      await chat(t, 2, { id_slot: 0 }, 300);
      const short = (await slotTokens(t))[0]!;
      const timings = await chat(t, 3, { id_slot: 3 }, 200); // 3 mod 2 = slot 1
      const after3 = await slotTokens(t);
      assert.equal(after3[0], short, 'slot 0 untouched');
      assert.equal(
        after3[1],
        timings.cache_n + timings.prompt_n + timings.predicted_n - 1,
        'slot 1 holds the task sent to id 3',
      );
      const save = await post(t, '/slots/-1?action=save', { filename: 'wrap-fact' });
      assert.equal(save.status, 200);
      assert.equal(save.body.id_slot, -1);
      assert.equal(save.body.n_saved, after3[1], '-1 is the last slot');
    });

    it(
      'a failed restore (missing or corrupt file) answers 400 and leaves the slot empty',
      { todo: todo('pinnedEmptySkipsRam') },
      async () => {
        await writeFile(join(t.saveDir, 'corrupt-fact'), Buffer.alloc(4096, 7));
        for (const filename of ['missing-fact', 'corrupt-fact']) {
          await chat(t, 4, { id_slot: 0 });
          assert.ok((await slotTokens(t))[0]! > 700);
          const res = await post(t, '/slots/0?action=restore', { filename });
          assert.equal(res.status, 400);
          assert.match(res.body.error.message, /^Unable to restore slot/);
          assert.equal((await slotTokens(t))[0], 0, `${filename}: the slot is empty`);
          assert.equal((await chat(t, 4, { id_slot: 0 })).cache_n, 0, `${filename}: nothing to reuse`);
        }
      },
    );

    it('GET /slots cannot confirm a restore: a slot filled only by a restore shows no n_prompt_tokens', async () => {
      const fresh = await startTarget(kind, 2);
      try {
        await chat(fresh, 8, { id_slot: 0 }, 300);
        assert.equal((await post(fresh, '/slots/0?action=save', { filename: 'restore-fact' })).status, 200);
        const res = await post(fresh, '/slots/1?action=restore', { filename: 'restore-fact' });
        assert.ok(res.body.n_restored > 300);
        const slots = (await (await fetch(`${fresh.url}/slots`)).json()) as Array<{ n_prompt_tokens?: number }>;
        assert.equal(slots[1]!.n_prompt_tokens, undefined);
      } finally {
        await fresh.close();
      }
    });

    it('a save of an empty slot answers 200 with n_saved 0', async () => {
      await post(t, '/slots/1?action=erase', {});
      const save = await post(t, '/slots/1?action=save', { filename: 'empty-fact' });
      assert.equal(save.status, 200);
      assert.equal(save.body.n_saved, 0);
    });

    it(
      '/v1/messages ignores id_slot: the task goes to the least recently used slot',
      { todo: todo('messagesIgnoreIdSlot') },
      async () => {
        await chat(t, 5, { id_slot: 0 }, 300);
        await chat(t, 6, { id_slot: 1 }, 310); // slot 1 most recently used
        const before = await slotTokens(t);
        const res = await post(t, '/v1/messages', {
          model: 'tiny',
          max_tokens: 4,
          temperature: 0,
          id_slot: 1,
          messages: [{ role: 'user', content: words(200, 7) }],
        });
        assert.equal(res.status, 200);
        const now = await slotTokens(t);
        assert.equal(now[1], before[1], 'the pinned slot was not used');
        assert.notEqual(now[0], before[0], 'the LRU slot was');
      },
    );
  });

  describe(`${kind} with its default slots (no -np): unified KV, idle slots cached in RAM`, { skip }, () => {
    let t: Target;
    before(async () => {
      t = await startTarget(kind, 'auto');
    });
    after(() => t?.close());

    it('has 4 slots; an idle slot is cleared when a task starts on another one, and its save is then empty', async () => {
      assert.equal((await slotTokens(t)).length, 4);
      await chat(t, 11, { id_slot: 0 });
      assert.ok((await slotTokens(t))[0]! > 700);
      await chat(t, 12, { id_slot: 1 });
      assert.equal((await slotTokens(t))[0], 0, 'slot 0 was cleared');
      const save = await post(t, '/slots/0?action=save', { filename: 'idle-fact' });
      assert.equal(save.body.n_saved, 0);
    });

    it('an unpinned task finds a cleared conversation in the RAM cache', async () => {
      const timings = await chat(t, 11);
      assert.ok(timings.cache_n > 700, `cache_n ${timings.cache_n}`);
    });

    it("GET /slots shows a task's seed on its slot while it runs, and after another launch cleared the slot", async () => {
      const seeds = async () => {
        const res = await fetch(`${t.url}/slots`, { signal: AbortSignal.timeout(5000) });
        const slots = (await res.json()) as Array<{ id: number; is_processing: boolean; params?: { seed?: number } }>;
        return slots.map((slot) => ({ id: slot.id, running: slot.is_processing, seed: slot.params?.seed }));
      };
      const long = chat(t, 15, { seed: 424242, max_tokens: 400 });
      let running: { id: number } | undefined;
      for (let look = 0; look < 200 && !running; look++) {
        running = (await seeds()).find((slot) => slot.running && slot.seed === 424242);
        if (!running) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(running, 'seen running with its seed');
      await long;
      await chat(t, 16, { id_slot: (running.id + 1) % 4, seed: 434343 }); // clears the first one's slot
      assert.equal((await slotTokens(t))[running.id], 0, 'cleared');
      const after = await seeds();
      assert.equal(after.find((slot) => slot.seed === 424242)?.id, running.id);
    });

    it(
      'a task pinned to an empty slot skips the RAM-cache lookup and prefills everything',
      { todo: todo('pinnedEmptySkipsRam') },
      async () => {
        await chat(t, 13, { id_slot: 3 });
        await chat(t, 14, { id_slot: 2 }); // clears slot 3; 13 is in the RAM cache
        assert.equal((await slotTokens(t))[3], 0);
        const timings = await chat(t, 13, { id_slot: 3 });
        assert.ok(timings.cache_n < 16, `cache_n ${timings.cache_n}`);
      },
    );
  });
}

for (const kind of ['llama-server', 'simulator'] as const) {
  const skip = kind === 'llama-server' && 'skip' in where ? where.skip : false;

  describe(`${kind} in router mode: connection facts the proxy relies on`, { skip }, () => {
    let t: Target;
    before(async () => {
      t = await startTarget(kind, 2, true);
    });
    after(() => t?.close());

    // The answer says so (`Connection: close`) only sometimes (seen on POSTs, and on GETs with some headers), so
    // a pooled client may send its next request on a connection that is closing.
    it("closes the connection after every answer it relays from a model's server; its own answers keep it", async () => {
      const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
      const body = JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
      const chatRequest =
        'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      assert.equal(await closesAfter(t, chatRequest), true, 'a chat');
      assert.equal(await closesAfter(t, get('/props?model=tiny')), true, "the model's /props");
      assert.equal(await closesAfter(t, get('/slots?model=tiny')), true, "the model's /slots");
      assert.equal(await closesAfter(t, get('/models')), false, '/models');
      assert.equal(await closesAfter(t, get('/props')), false, "the router's /props");
    });
  });
}
