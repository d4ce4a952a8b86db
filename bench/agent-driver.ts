/**
 * Sends the `agents` workload's requests (built by its sessions from the traces) to one target, each on the API its
 * client speaks, and reads from each answer what the backend prefilled and reused (`timings`, or the API's usage)
 * and the reply text the client appends to its history. Jobs of one group (an agent's user turn with its side
 * requests, an IDE burst) are sent back to back by one client; an agent's next group waits for its previous one.
 */
import { Agent, request } from 'undici';
import type { RequestResult, Target } from './driver.js';
import type { AgentRequest, AgentSessions, Job, Workload } from './workloads.js';

const dispatcher = new Agent({ pipelining: 0, headersTimeout: 600_000, bodyTimeout: 600_000 });

/** What one answer said, whatever its API. */
interface Answer {
  reply: string;
  cacheN: number;
  promptN: number;
  completionTokens: number;
}

export async function runAgentWorkload(
  workload: Workload,
  target: Target,
  sessions: AgentSessions,
): Promise<RequestResult[]> {
  const results: RequestResult[] = new Array(workload.jobs.length);
  const lastGroup = new Map<string, Promise<void>>();
  let next = 0;
  const worker = async () => {
    while (next < workload.jobs.length) {
      const first = next++;
      const group = workload.jobs[first]!.group;
      while (next < workload.jobs.length && group !== undefined && workload.jobs[next]!.group === group) next++;
      const end = next;
      const owner = ownerOf(workload.jobs[first]!);
      const previous = lastGroup.get(owner) ?? Promise.resolve();
      let done!: () => void;
      lastGroup.set(owner, new Promise<void>((r) => (done = r)));
      await previous;
      try {
        for (let i = first; i < end; i++) results[i] = await runJob(workload.jobs[i]!, target, sessions);
      } finally {
        done();
      }
    }
  };
  await Promise.all(Array.from({ length: workload.concurrency }, worker));
  return results;
}

function ownerOf(job: Job): string {
  return job.kind === 'turn' ? job.conversation : (job.agent ?? 'small');
}

async function runJob(job: Job, target: Target, sessions: AgentSessions): Promise<RequestResult> {
  const req = sessions.request(job);
  const started = performance.now();
  const res = await request(`${target.url}${req.path}`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', ...req.headers },
    body: JSON.stringify(req.body),
  });
  let first = 0;
  let last = 0;
  let text = '';
  for await (const chunk of res.body) {
    last = performance.now();
    if (!first) first = last;
    text += (chunk as Buffer).toString('utf8');
  }
  if (res.statusCode !== 200)
    throw new Error(`${req.api} ${req.path} answered HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
  const answer = req.body.stream === true ? readStream(req.api, text) : readWhole(text);
  sessions.answered(job, answer.reply.trim());
  return {
    job,
    status: res.statusCode,
    ttftMs: first - started,
    totalMs: last - started,
    streamMs: last - first,
    cacheN: answer.cacheN,
    promptN: answer.promptN,
    promptTokens: answer.cacheN + answer.promptN,
    completionTokens: answer.completionTokens,
  };
}

interface Timings {
  cache_n?: number;
  prompt_n?: number;
  predicted_n?: number;
}

/** A native (`/infill`) answer without streaming: `content` and `timings`. */
function readWhole(text: string): Answer {
  const body = JSON.parse(text) as { content?: string; timings?: Timings };
  const t = body.timings ?? {};
  return {
    reply: body.content ?? '',
    cacheN: t.cache_n ?? 0,
    promptN: t.prompt_n ?? 0,
    completionTokens: t.predicted_n ?? 0,
  };
}

/**
 * An SSE answer of `api`. Chat: `delta.content`, `timings` and `usage` on the last chunks. Messages: text deltas; the
 * prompt's counts in `message_start` (`input_tokens` = prefilled, `cache_read_input_tokens` = reused), replaced by
 * those of `message_delta` when it has them; `output_tokens` there. Responses: text deltas; `timings` beside
 * `response.completed`, whose `usage` counts the output.
 */
function readStream(api: AgentRequest['api'], text: string): Answer {
  const answer: Answer = { reply: '', cacheN: 0, promptN: 0, completionTokens: 0 };
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const e = JSON.parse(line.slice(6)) as Record<string, any>;
    if (e.error || e.type === 'error') throw new Error(`${api}: error in stream: ${JSON.stringify(e.error ?? e)}`);
    if (api === 'chat') {
      answer.reply += e.choices?.[0]?.delta?.content ?? '';
      if (e.timings) take(answer, e.timings as Timings);
      if (e.usage?.completion_tokens !== undefined) answer.completionTokens = e.usage.completion_tokens;
    } else if (api === 'messages') {
      if (e.type === 'content_block_delta' && e.delta?.type === 'text_delta') answer.reply += e.delta.text;
      const usage = e.type === 'message_start' ? e.message?.usage : e.type === 'message_delta' ? e.usage : undefined;
      if (usage?.input_tokens !== undefined) answer.promptN = usage.input_tokens;
      if (usage?.cache_read_input_tokens !== undefined) answer.cacheN = usage.cache_read_input_tokens;
      if (e.type === 'message_delta' && usage?.output_tokens !== undefined)
        answer.completionTokens = usage.output_tokens;
    } else if (api === 'responses') {
      if (e.type === 'response.output_text.delta') answer.reply += e.delta;
      if (e.type === 'response.completed') {
        if (e.timings) take(answer, e.timings as Timings);
        if (e.response?.usage?.output_tokens !== undefined) answer.completionTokens = e.response.usage.output_tokens;
      }
    }
  }
  return answer;
}

function take(answer: Answer, t: Timings): void {
  if (t.cache_n !== undefined) answer.cacheN = t.cache_n;
  if (t.prompt_n !== undefined) answer.promptN = t.prompt_n;
  if (t.predicted_n !== undefined && !answer.completionTokens) answer.completionTokens = t.predicted_n;
}
