/**
 * Measures a real llama-server's costs, the numbers the simulator's cost model stands for: prefill and decode per
 * token, KV bytes per token in save files, save and restore per token. One slot, no RAM cache, nothing else
 * running on the server: each sample prefills a fresh prompt, saves the slot, erases it and restores the file.
 * The medians of the samples are reported, and the restore/prefill and save/prefill cost ratios derived from them.
 */
import { request } from 'undici';
import { words } from '../test/support/text.js';
import { median } from './metrics.js';
import { startBenchServer } from './real-server.js';
import type { LlamaServerBinary } from './real-server.js';

export interface Calibration {
  /** How it was measured. */
  method: string;
  samples: number;
  prompt_tokens: number;
  prefill_tokens_per_s: number;
  prefill_ms_per_token: number;
  decode_ms_per_token: number;
  kv_bytes_per_token: number;
  save_ms_per_token: number;
  restore_ms_per_token: number;
  /** Wall time of the slot-action requests, which also includes the HTTP round trip. */
  save_wall_ms_per_token: number;
  restore_wall_ms_per_token: number;
  restore_to_prefill_ratio: number;
  save_to_prefill_ratio: number;
}

interface Sample {
  promptN: number;
  promptMs: number;
  decodeMsPerToken: number;
  nSaved: number;
  nWritten: number;
  saveMs: number;
  restoreMs: number;
  saveWallMs: number;
  restoreWallMs: number;
}

/** Start a one-slot server without RAM cache in `saveDir`, take `samples` samples of a `words`-word prompt. */
export async function calibrate(
  binary: LlamaServerBinary,
  saveDir: string,
  opts: { samples: number; words: number },
): Promise<Calibration> {
  const server = await startBenchServer(binary, saveDir, ['-np', '1', '-c', '16384', '--cache-ram', '0']);
  try {
    await chat(server.url, words(64, 7)); // warm-up: the first request pays one-off allocations
    const samples: Sample[] = [];
    for (let i = 0; i < opts.samples; i++) samples.push(await sample(server.url, i, opts.words));
    const m = (f: (s: Sample) => number) => median(samples.map(f));
    const prefill = m((s) => s.promptMs / s.promptN);
    const save = m((s) => s.saveMs / s.nSaved);
    const restore = m((s) => s.restoreMs / s.nSaved);
    return {
      method: `llama-server -np 1 -c 16384 --cache-ram 0 (flash attention at its default, auto); per sample: a fresh ${opts.words}-word chat prompt (temperature 0, 32 tokens), then save slot 0, erase it, restore the file; medians of ${opts.samples} samples after one warm-up request; per-token costs from timings.prompt_ms / prompt_n, predicted_ms / predicted_n, save_ms / n_saved, restore_ms / n_restored, bytes from n_written / n_saved`,
      samples: opts.samples,
      prompt_tokens: Math.round(m((s) => s.promptN)),
      prefill_tokens_per_s: round(1000 / prefill),
      prefill_ms_per_token: round(prefill, 5),
      decode_ms_per_token: round(
        m((s) => s.decodeMsPerToken),
        4,
      ),
      kv_bytes_per_token: round(
        m((s) => s.nWritten / s.nSaved),
        1,
      ),
      save_ms_per_token: round(save, 6),
      restore_ms_per_token: round(restore, 6),
      save_wall_ms_per_token: round(
        m((s) => s.saveWallMs / s.nSaved),
        6,
      ),
      restore_wall_ms_per_token: round(
        m((s) => s.restoreWallMs / s.nSaved),
        6,
      ),
      restore_to_prefill_ratio: round(restore / prefill, 4),
      save_to_prefill_ratio: round(save / prefill, 4),
    };
  } finally {
    await server.stop();
  }
}

async function sample(url: string, i: number, count: number): Promise<Sample> {
  const answer = await chat(url, words(count, 9000 + i));
  const file = `calibration-${i}`;
  let started = performance.now();
  const saved = await slotAction<SaveAnswer>(url, 'save', file);
  const saveWallMs = performance.now() - started;
  await slotAction(url, 'erase');
  started = performance.now();
  const restored = await slotAction<RestoreAnswer>(url, 'restore', file);
  const restoreWallMs = performance.now() - started;
  if (restored.n_restored !== saved.n_saved)
    throw new Error(`restored ${restored.n_restored} tokens of ${saved.n_saved} saved`);
  return {
    promptN: answer.timings.prompt_n,
    promptMs: answer.timings.prompt_ms,
    decodeMsPerToken: answer.timings.predicted_ms / answer.timings.predicted_n,
    nSaved: saved.n_saved,
    nWritten: saved.n_written,
    saveMs: saved.timings.save_ms,
    restoreMs: restored.timings.restore_ms,
    saveWallMs,
    restoreWallMs,
  };
}

interface Timings {
  prompt_n: number;
  prompt_ms: number;
  predicted_n: number;
  predicted_ms: number;
}

async function chat(url: string, content: string): Promise<{ timings: Timings }> {
  const body = { messages: [{ role: 'user', content }], max_tokens: 32, temperature: 0, id_slot: 0 };
  return post(url, '/v1/chat/completions', body) as Promise<{ timings: Timings }>;
}

/** The fields of the slot actions' answers used here (llama-server's shapes; erase's answer is not read). */
interface SaveAnswer {
  n_saved: number;
  n_written: number;
  timings: { save_ms: number };
}
interface RestoreAnswer {
  n_restored: number;
  timings: { restore_ms: number };
}

async function slotAction<T = unknown>(
  url: string,
  action: 'save' | 'restore' | 'erase',
  filename?: string,
): Promise<T> {
  return post(url, `/slots/0?action=${action}`, filename ? { filename } : {}) as Promise<T>;
}

async function post(url: string, path: string, body: unknown): Promise<unknown> {
  const res = await request(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`POST ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
