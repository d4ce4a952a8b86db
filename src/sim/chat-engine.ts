/**
 * Runs one chat task on a slot with real prefix-reuse accounting: `cache_n` is the common token prefix of the
 * slot and the prompt (capped at prompt − 1, since the last prompt token is always evaluated), `prompt_n` is the
 * rest; prefill and decode run on the process's compute engine (compute-engine.ts), which reports their model
 * time; afterwards the slot holds the prompt plus the generated tokens minus the last one (which was sampled but
 * never evaluated).
 */
import { AbortedError, round3 } from './cost-model.js';
import type { ModelInstance } from './model-instance.js';
import { prepareSlot } from './prompt-cache-policy.js';
import { replyGenerator } from './reply.js';
import type { Slot } from './slot.js';
import type { SlotChoice } from './slot-scheduler.js';

/** llama-server's default `n_batch`: the prompt tokens its main loop takes up in one go. */
const PROMPT_BATCH_TOKENS = 2048;

/** A validated chat request, ready to run. */
export interface ChatTask {
  prompt: string[];
  promptText: string;
  cachePrompt: boolean;
  /** Tokens to generate. */
  nPredict: number;
  /** True when the client set max_tokens / n_predict: reaching it ends with `length`, else `stop` (EOS). */
  limited: boolean;
  /** `id_slot` as sent, undefined (or −1) for any slot. */
  idSlot: number | undefined;
  /** Sampling parameters as `/slots` will show them. */
  params: Record<string, unknown>;
}

/** What happened; `slot` is −1 when the task never got a slot. */
export interface ChatOutcome {
  slot: number;
  cacheN: number;
  promptN: number;
  promptMs: number;
  predicted: string[];
  predictedMs: number;
  finishReason: 'length' | 'stop';
  aborted: boolean;
  ramHit: boolean;
}

/** Called for every generated token, before the next one is decoded; `sofar` already has the prompt's counts. */
export type TokenSink = (piece: string, sofar: Readonly<ChatOutcome>) => void;

/** Schedules and runs `task`; never rejects for an abort (the outcome says `aborted`). */
export async function runChat(
  inst: ModelInstance,
  task: ChatTask,
  onToken: TokenSink,
  signal: AbortSignal,
): Promise<ChatOutcome> {
  let outcome: ChatOutcome;
  try {
    outcome = await inst.scheduler.run(
      task.idSlot,
      task.prompt,
      (slot, how) => runOnSlot(inst, slot, how, task, onToken, signal),
      signal,
    );
  } catch (err) {
    if (!(err instanceof AbortedError)) throw err;
    outcome = emptyOutcome(-1);
  }
  inst.recorder.record({
    type: outcome.aborted ? 'chat_aborted' : 'chat',
    model: inst.config.id,
    slot: outcome.slot,
    pinned: task.idSlot !== undefined,
    cache_n: outcome.cacheN,
    prompt_n: outcome.promptN,
    predicted_n: outcome.predicted.length,
    aborted: outcome.aborted,
    ram_hit: outcome.ramHit,
  });
  return outcome;
}

function emptyOutcome(slot: number): ChatOutcome {
  const base = { cacheN: 0, promptN: 0, promptMs: 0, predicted: [], predictedMs: 0 };
  return { ...base, slot, finishReason: 'stop', aborted: true, ramHit: false };
}

async function runOnSlot(
  inst: ModelInstance,
  slot: Slot,
  how: SlotChoice,
  task: ChatTask,
  onToken: TokenSink,
  signal: AbortSignal,
): Promise<ChatOutcome> {
  if (signal.aborted) return emptyOutcome(slot.id);
  const { nCtx } = inst.config;
  const prompt = task.prompt;
  const idTask = inst.nextTaskId();
  const out: ChatOutcome = { ...emptyOutcome(slot.id), aborted: false };
  // `GET /slots` shows a prompt batch's tokens in the slot's KV as soon as the batch is taken up, as the real server
  // does (a cold task shows its first `n_batch` tokens right after its launch).
  const batchFrom = (done: number) => Math.min(out.promptN, done + PROMPT_BATCH_TOKENS);
  try {
    // Launching the task is a task of the server's main loop: it waits for the current batch, then moves slot
    // states into and out of the RAM cache while every other slot waits. Only then does `GET /slots` show the task
    // on its slot, with the tokens kept or brought back from the RAM cache in its KV (as the real server does).
    await inst.engine.task(async (hold) => {
      if (signal.aborted) throw new AbortedError();
      const prepared = await prepareSlot(inst, slot, how, prompt, hold);
      makeRoomForPrompt(inst, slot, prompt.length);
      out.ramHit = prepared.ramHit;
      out.cacheN = task.cachePrompt ? Math.min(prepared.lcp, prompt.length - 1) : 0;
      out.promptN = prompt.length - out.cacheN;
      slot.idTask = idTask;
      slot.params = task.params;
      slot.processing = true;
      slot.lastUsed = inst.tick();
      slot.nextToken = { has_next_token: true, has_new_line: false, n_remain: task.nPredict, n_decoded: 0 };
      slot.tokens = prompt.slice(0, out.cacheN + batchFrom(0));
    });
    slot.reuseBlocked = false;
    let processed = 0;
    const promptMs = await inst.engine
      .prefill(
        out.promptN,
        signal,
        (done) => {
          processed = done;
          slot.tokens = prompt.slice(0, out.cacheN + batchFrom(done));
        },
        slot.id,
      )
      .catch((err: unknown) => {
        // Keep what the prefill got through before the client left.
        slot.tokens = prompt.slice(0, out.cacheN + Math.min(processed, out.promptN - 1));
        throw err;
      });
    out.promptMs = round3(promptMs);
    slot.tokens = prompt;
    const next = replyGenerator(task.promptText);
    const room = Math.max(0, nCtx - prompt.length); // context full: the answer is cut with `length`
    const predictedMs = await inst.engine.generate(Math.min(task.nPredict, room), signal, (i) => {
      const piece = next();
      out.predicted.push(piece);
      slot.nextToken = { ...slot.nextToken, n_decoded: i + 1, n_remain: task.nPredict - i - 1 };
      onToken(piece, out);
    });
    out.predictedMs = round3(predictedMs);
    out.finishReason = task.limited || out.predicted.length < task.nPredict ? 'length' : 'stop';
  } catch (err) {
    if (!(err instanceof AbortedError)) throw err;
    out.aborted = true;
  } finally {
    if (out.predicted.length > 0) slot.tokens = prompt.concat(keptTokens(inst, out.predicted.slice(0, -1)));
    slot.processing = false;
    slot.lastUsed = inst.tick();
    slot.nextToken = { ...slot.nextToken, has_next_token: false };
  }
  return out;
}

/**
 * The generated tokens as the slot keeps them. With `replyTextTokenizesDifferently` each is marked with a character
 * the tokenizer splits off, so no text tokenizes to it: a prompt carrying the reply's text matches up to the reply.
 */
function keptTokens(inst: ModelInstance, generated: string[]): string[] {
  return inst.config.replyTextTokenizesDifferently ? generated.map((piece) => piece + NOT_FROM_TEXT) : generated;
}

const NOT_FROM_TEXT = '\u0000';

/**
 * llama-server's `try_clear_idle_slots`: on a unified KV buffer, a prompt batch that finds no free cells (a failed
 * decode) clears idle slots, without saving them anywhere, and is tried again. Modelled at the launch: idle slots,
 * least recently used first, until the prompt fits beside the rest. With `--cache-idle-slots` and a RAM cache the
 * launch has cleared them already; this is what a server without them (`--cache-ram 0`) does once its buffer is full.
 */
function makeRoomForPrompt(inst: ModelInstance, slot: Slot, tokens: number): void {
  if (!inst.config.kvUnified) return;
  const idle = inst.slots
    .filter((other) => other !== slot && !other.processing && other.tokens.length > 0)
    .sort((a, b) => a.lastUsed - b.lastUsed);
  for (const other of idle) {
    if (inst.fitsBeside(slot, tokens)) return;
    other.clear();
  }
}
