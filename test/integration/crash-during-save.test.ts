/**
 * The proxy killed with SIGKILL while llama-server writes a slot save, then started again on the same directories:
 * it starts cleanly, no meta points at a missing or partial file, the interrupted save is not offered as a cache,
 * and the next turn of that conversation is restored from what really is on disk (the older entry, which lineage
 * had not yet deleted because the new save never completed). Then the state a kill between lineage's two deletions
 * would leave (a meta whose file is gone): the restarted proxy drops the entry at start-up instead of offering it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { checkConsistency, isConsistent } from '../../bench/soak/consistency.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle } from '../../src/sim/index.js';
import { continued, exists, keyOf, metaPath, opening } from '../support/cache.js';
import type { Message } from '../support/cache.js';
import { cleanEnv, spawnCli } from '../support/child.js';
import type { CliProcess } from '../support/child.js';
import { eventually, withDeadline } from '../support/deadline.js';
import { eventsOf } from '../support/sim-helpers.js';
import { words } from '../support/text.js';

const MODEL = 'tiny';

/**
 * Real-time costs where a save of the grown conversation takes about a second, and its growth costs more to
 * prefill again than the save (so the smart policy saves it when it is evicted): 1 ms per prefilled token against
 * 0.5 ms per saved one.
 */
const COST = {
  timeScale: 1,
  prefillMsPerToken: 1,
  decodeMsPerToken: 1,
  kvBytesPerToken: 100_000,
  saveMsPerMB: 5,
  restoreMsPerMB: 0.1,
  ramLoadMsPerMB: 0,
  modelLoadMs: 0,
};

interface Started {
  proc: CliProcess;
  url: string;
  openai: OpenAI;
  logs(): Array<Record<string, any>>;
}

describe('proxy killed (SIGKILL) during a save, then restarted', () => {
  let root: string;
  let sim: SimHandle;
  const procs: CliProcess[] = [];
  let env: NodeJS.ProcessEnv;
  /** The proxy of the first test, still running for the second. */
  let running: Started | undefined;
  let conversationB: Message[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'proxycache-crash-'));
    sim = await startSimulator({
      mode: 'llama-server',
      models: [{ id: MODEL, nSlots: 1, nCtx: 65536 }],
      slotSavePath: join(root, 'cache'),
      cacheRamMiB: 0,
      cost: COST,
    });
    env = cleanEnv({
      HOST: '127.0.0.1',
      PORT: '0',
      LLAMA_URL: sim.url,
      N_SLOTS: '1',
      META_DIR: join(root, 'meta'),
      CACHE_DIR: join(root, 'cache'),
      SAVE_POLICY: 'smart',
      SAVE_MIN_NEW_TOKENS: '0',
      IDLE_SAVE_SECONDS: '0',
      BIG_THRESHOLD_WORDS: '40',
      WORDS_PER_BLOCK: '8',
      LOG_LEVEL: 'info',
      REQUEST_TIMEOUT: '20',
      ACQUIRE_TIMEOUT: '20',
    });
  });
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exit(5000).catch(() => undefined)));
    await sim?.close();
    await rm(root, { recursive: true, force: true });
  });

  async function startProxy(): Promise<Started> {
    const proc = spawnCli([], env);
    procs.push(proc);
    const line = await proc.line((l) => l.includes('"proxycache listening"'), 10_000, 'the proxy to listen');
    const url = (JSON.parse(line) as { address: string }).address;
    const logs = () =>
      proc.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, any>);
    return {
      proc,
      url,
      openai: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'test', maxRetries: 0, timeout: 30_000 }),
      logs,
    };
  }

  async function send(
    p: Started,
    messages: readonly Message[],
  ): Promise<{ reply: string; cacheN: number; line: Record<string, any> }> {
    const chats = p.logs().filter((l) => l.msg === 'chat').length;
    const res = await p.openai.chat.completions.create({ model: MODEL, messages: [...messages], max_tokens: 4 });
    const line = await eventually(() => p.logs().filter((l) => l.msg === 'chat')[chats], 5000, 'the chat log line');
    return {
      reply: res.choices[0]?.message.content ?? '',
      cacheN: (res as unknown as { timings: { cache_n: number } }).timings.cache_n,
      line,
    };
  }

  it('starts cleanly, offers only complete files, and restores the older entry of the conversation', async () => {
    const metaDir = join(root, 'meta');
    const cacheDir = join(root, 'cache');
    const first = await startProxy();

    // A's first turn, then B takes the only slot: A is saved (A1). A's second turn grows by ~2,000 words: B is
    // saved, A1 restored, the growth prefilled; the slot now holds A2, whose parent entry is A1.
    const a1 = opening(11, 200);
    const a1Answer = await send(first, a1);
    conversationB = opening(12, 64);
    await send(first, conversationB);
    const a2 = [...continued(a1, a1Answer.reply, 13).slice(0, -1), { role: 'user' as const, content: words(2000, 14) }];
    const a2Answer = await send(first, a2);
    assert.equal(a2Answer.line.decision, 'restore', 'A2 came back from A1 on disk');
    const keyA1 = keyOf(a1);
    const keyA2 = keyOf(a2);
    assert.ok(await exists(metaPath(metaDir, keyA1)), 'A1 is on disk with its meta');

    // C evicts A2, which the proxy saves first (about a second). The file appears when the save begins; the
    // server records the save when it ends. Kill the proxy in between.
    const savesBefore = eventsOf(sim, 'save').length;
    const c = first.openai.chat.completions
      .create({ model: MODEL, messages: opening(15, 64), max_tokens: 4 })
      .catch((err: unknown) => err);
    await eventually(() => exists(join(cacheDir, keyA2)), 10_000, 'the save of A2 to begin (its file)');
    assert.equal(eventsOf(sim, 'save').length, savesBefore, 'the save of A2 is still running');
    first.proc.child.kill('SIGKILL');
    const killed = await first.proc.exit(5000);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok((await withDeadline(c, 5000, "C's request to fail")) instanceof Error, "C's request died with the proxy");
    assert.equal(await exists(metaPath(metaDir, keyA2)), false, 'no meta for the interrupted save');
    assert.ok(await exists(metaPath(metaDir, keyA1)), 'A1 kept: lineage deletes it only after A2 is saved');

    // Restart on the same directories, while the server may still be writing A2.
    const second = await startProxy();
    const loaded = second.logs().find((l) => l.msg === 'cache index loaded');
    assert.equal(loaded?.entries, 2, 'the index holds A1 and B1');
    assert.equal(
      second.logs().filter((l) => l.msg === 'unreadable meta file set aside').length,
      0,
      'no meta was damaged',
    );
    const health = await fetch(`${second.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { cache_entries: number }).cache_entries, 2);

    await eventually(() => eventsOf(sim, 'save').length > savesBefore, 10_000, 'the server to finish the save of A2');
    const atStart = await checkConsistency(metaDir, cacheDir);
    assert.ok(isConsistent(atStart), `every meta has its whole file: ${JSON.stringify(atStart)}`);
    assert.deepEqual(atStart.orphanFiles, [keyA2], "A2's file has no meta, so it is never offered");

    // A's next turn: the newest state on disk with a meta is A1, restored; the growth is prefilled again.
    const a3 = continued(a2, a2Answer.reply, 16);
    const a3Answer = await send(second, a3);
    assert.equal(a3Answer.line.decision, 'restore');
    assert.equal(a3Answer.line.restore?.ok, true, `the restore worked: ${JSON.stringify(a3Answer.line.restore)}`);
    assert.equal(a3Answer.line.restore_key, keyA1.slice(0, 16), 'restored from A1');
    assert.ok(
      a3Answer.cacheN >= a1Answer.line.prompt_n,
      `reused ${a3Answer.cacheN} tokens, at least A1's ${a1Answer.line.prompt_n}`,
    );

    const atEnd = await checkConsistency(metaDir, cacheDir);
    assert.ok(isConsistent(atEnd), `still consistent: ${JSON.stringify(atEnd)}`);
    running = second;
  });

  it('a meta whose file is gone (killed between deleting a superseded file and its meta) is dropped at start-up', async () => {
    assert.ok(running, 'the first test left a proxy running');
    const metaDir = join(root, 'meta');
    const cacheDir = join(root, 'cache');
    const keyB = keyOf(conversationB);
    assert.ok(await exists(metaPath(metaDir, keyB)), "B's entry is on disk");
    running.proc.child.kill('SIGKILL');
    await running.proc.exit(5000);
    // Lineage unlinks the superseded file, then removes its meta: a kill in between leaves exactly this.
    await unlink(join(cacheDir, keyB));

    const third = await startProxy();
    const cleanup = await eventually(
      () => third.logs().find((l) => l.msg === 'cache cleanup done'),
      5000,
      'the start-up cleanup',
    );
    assert.equal(cleanup.droppedMissing, 1, `the entry without its file was dropped: ${JSON.stringify(cleanup)}`);
    assert.equal(await exists(metaPath(metaDir, keyB)), false, "B's meta is gone with it");
    const state = await checkConsistency(metaDir, cacheDir);
    assert.ok(isConsistent(state), `consistent: ${JSON.stringify(state)}`);
    const health = (await (await fetch(`${third.url}/health`)).json()) as { cache_entries: number };
    assert.equal(health.cache_entries, state.metas, 'the index holds what META_DIR holds');

    // B's next turn finds nothing to restore and is answered cold, without a failed restore first.
    const b2 = await send(third, continued(conversationB, 'ok', 17));
    assert.equal(b2.line.decision, 'cold');
    assert.equal(b2.line.restore, undefined, 'no restore of the missing file was tried');
  });
});
