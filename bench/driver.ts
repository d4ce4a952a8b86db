/**
 * Sends a workload's jobs to one target (the backend directly or a proxy) as streaming chat completions and
 * records, per request, time to first token, the backend's `timings` and `usage`, and the streaming rate.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { ConversationSpec, Job, Workload } from './workloads.js';
import { smallPrompt, userMessage } from './workloads.js';
import { runAgentWorkload } from './agent-driver.js';

export interface RequestResult {
  job: Job;
  status: number;
  ttftMs: number;
  totalMs: number;
  /** Milliseconds between the first and the last streamed chunk. */
  streamMs: number;
  cacheN: number;
  promptN: number;
  promptTokens: number;
  completionTokens: number;
}

export interface Target {
  url: string;
  /** Called between segments of a workload with restarts (backend and proxy). */
  restart?: () => Promise<void>;
  /** The `id_slot` to send with a job, when the client pins requests itself (the real bench's ideal run). */
  pin?: (job: Job) => number;
}

interface Message {
  role: 'user' | 'assistant';
  content: string;
}

// No keep-alive: llama-server closes the connection after every stream anyway, and every target gets the same client.
const dispatcher = new Agent({ pipelining: 0, headersTimeout: 600_000, bodyTimeout: 600_000 });

/** Run every job of the workload against the target; results are in job order. */
export async function runWorkload(workload: Workload, target: Target): Promise<RequestResult[]> {
  if (workload.agents) return runAgentWorkload(workload, target, workload.agents(workload.models[0]!));
  const histories = new Map<string, Message[]>(workload.conversations.map((c) => [c.id, []]));
  const specs = new Map(workload.conversations.map((c) => [c.id, c]));
  const results: RequestResult[] = new Array(workload.jobs.length);
  const cuts = [0, ...(workload.restartsBefore ?? []), workload.jobs.length];
  for (let s = 0; s + 1 < cuts.length; s++) {
    if (s > 0) await target.restart?.();
    await runSegment(workload, target, cuts[s]!, cuts[s + 1]!, { histories, specs, results });
  }
  return results;
}

async function runSegment(
  workload: Workload,
  target: Target,
  from: number,
  to: number,
  state: { histories: Map<string, Message[]>; specs: Map<string, ConversationSpec>; results: RequestResult[] },
): Promise<void> {
  let next = from;
  const lastTurn = new Map<string, Promise<void>>();
  const worker = async () => {
    while (next < to) {
      // Claim a whole burst (an agent's tool loop) at once: one client sends its turns back to back.
      const first = next++;
      const head = workload.jobs[first]!;
      while (next < to && head.kind === 'turn' && head.burst !== undefined && sameBurst(head, workload.jobs[next]!))
        next++;
      const end = next;
      for (let index = first; index < end; index++) {
        await runJob(index);
        if (workload.thinkMs) await sleep(workload.thinkMs);
      }
    }
  };
  const runJob = async (index: number) => {
    const job = workload.jobs[index]!;
    if (job.kind === 'small') {
      state.results[index] = await send(
        target,
        job,
        job.model,
        [{ role: 'user', content: smallPrompt(job.seed) }],
        workload,
      );
      return;
    }
    // A conversation's turns never overlap: wait for its previous turn if another client still runs it.
    const previous = lastTurn.get(job.conversation) ?? Promise.resolve();
    let done!: () => void;
    lastTurn.set(job.conversation, new Promise<void>((r) => (done = r)));
    await previous;
    const spec = state.specs.get(job.conversation)!;
    const history = state.histories.get(job.conversation)!;
    history.push({ role: 'user', content: userMessage(spec, job.turn) });
    const { result, reply } = await sendTurn(target, job, spec.model, history, workload);
    history.push({ role: 'assistant', content: reply });
    state.results[index] = result;
    done();
  };
  await Promise.all(Array.from({ length: workload.concurrency }, worker));
}

function sameBurst(a: Job, b: Job): boolean {
  return a.kind === 'turn' && b.kind === 'turn' && a.conversation === b.conversation && a.burst === b.burst;
}

async function send(
  target: Target,
  job: Job,
  model: string,
  messages: Message[],
  workload: Workload,
): Promise<RequestResult> {
  return (await sendTurn(target, job, model, messages, workload)).result;
}

async function sendTurn(target: Target, job: Job, model: string, messages: Message[], workload: Workload) {
  const pinned = target.pin && { id_slot: target.pin(job) };
  const started = performance.now();
  const res = await request(`${target.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      ...workload.requestBody,
      ...pinned,
      model,
      messages,
      max_tokens: workload.maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  let first = 0;
  let last = 0;
  let text = '';
  let reply = '';
  for await (const chunk of res.body) {
    last = performance.now();
    if (!first) first = last;
    text += (chunk as Buffer).toString('utf8');
  }
  let timings: { cache_n?: number; prompt_n?: number } = {};
  let usage: { prompt_tokens?: number; completion_tokens?: number } = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const event = JSON.parse(line.slice(6)) as {
      timings?: typeof timings;
      usage?: typeof usage;
      choices?: Array<{ delta?: { content?: string | null } }>;
      error?: { message?: string };
    };
    if (event.error) throw new Error(`backend error in stream: ${event.error.message}`);
    if (event.timings) timings = event.timings;
    if (event.usage) usage = event.usage;
    reply += event.choices?.[0]?.delta?.content ?? '';
  }
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
  const result: RequestResult = {
    job,
    status: res.statusCode,
    ttftMs: first - started,
    totalMs: last - started,
    streamMs: last - first,
    cacheN: timings.cache_n ?? 0,
    promptN: timings.prompt_n ?? 0,
    promptTokens: usage.prompt_tokens ?? 0,
    completionTokens: usage.completion_tokens ?? 0,
  };
  return { result, reply: reply.trim() };
}
