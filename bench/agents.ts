/**
 * The `agents` workload (issue 8, item 9): four coding agents and an IDE on 2 slots, each request shaped like the
 * captures in `../shared/agent-traces/` and extended over several turns the way the client does it (append the
 * assistant message and the next tool result; a new user prompt starts the next user turn):
 * - Claude Code on `/v1/messages?beta=true` (its `cache_control` marker moved to the last block every request);
 * - Codex on `/v1/responses` (`prompt_cache_key`, function_call / function_call_output items);
 * - opencode on chat completions with its small title request at the start of the session;
 * - Qwen Code on chat completions with, from its 2nd user turn on, a big memory-extraction request after each user
 *   turn: its own ~23k-character system prompt, 4 tools and the conversation as text (no shared prefix);
 * - an IDE's `/infill` bursts (llama.vscode: a few snippets of context, a prefix growing as the user types, a suffix).
 * The main conversations' requests are `turn` jobs, everything else `small` jobs with a `side`. The model answers
 * text only, so the assistant message a client appends carries that text (what the model generated) and then the
 * tool call the client would have parsed from it.
 */
import { words } from '../test/support/text.js';
import { loadAgentTraces } from './agent-traces.js';
import type { AgentTraces } from './agent-traces.js';
import type { AgentRequest, AgentSessions, ConversationSpec, Job, Workload } from './workloads.js';

/** User turns per agent, main requests per user turn (the first prompt, then one per tool result). */
export const AGENT_ROUNDS = 6;
export const STEPS_PER_TURN = 3;
/**
 * Words of each tool result (a file read, a test run): about 1.5k tokens, so the sessions grow the way agents' do
 * (20-60k tokens). With the other workloads' 450 the four sessions stayed inside llama-server's default 8 GiB RAM
 * cache, where the server alone loses nothing and the bench compares nothing.
 */
const TOOL_RESULT_WORDS = 1500;
/** /infill requests per IDE burst. */
const INFILL_BURST = 4;
const MAIN_AGENTS = ['claude', 'codex', 'opencode', 'qwen'] as const;
type MainAgent = (typeof MAIN_AGENTS)[number];

type Json = Record<string, any>;
const clone = <T>(v: T): T => structuredClone(v);

/** The jobs: per round, one user turn of each agent (its steps and side requests as one group), then an IDE burst. */
export function agentsWorkload(): Workload {
  const model = 'model-a';
  const jobs: Job[] = [];
  let seed = 1;
  for (let round = 0; round < AGENT_ROUNDS; round++) {
    for (const agent of MAIN_AGENTS) {
      const group = `${agent}/${round}`;
      if (agent === 'opencode' && round === 0)
        jobs.push({ kind: 'small', model, seed: seed++, group, agent, side: 'title' });
      for (let step = 0; step < STEPS_PER_TURN; step++)
        jobs.push({ kind: 'turn', conversation: agent, turn: round * STEPS_PER_TURN + step, group });
      if (agent === 'qwen' && round >= 1)
        jobs.push({ kind: 'small', model, seed: seed++, group, agent, side: 'memory' });
    }
    for (let i = 0; i < INFILL_BURST; i++)
      jobs.push({
        kind: 'small',
        model,
        seed: infillSeed(round, i),
        group: `ide/${round}`,
        agent: 'ide',
        side: 'infill',
      });
  }
  const conversations: ConversationSpec[] = MAIN_AGENTS.map((id) => ({
    id,
    model,
    startWords: 0,
    turnWords: TOOL_RESULT_WORDS,
  }));
  return {
    name: 'agents',
    description: `Claude Code (messages), Codex (responses), opencode (chat + title) and Qwen Code (chat + memory extraction) from the agent traces, ${AGENT_ROUNDS} user turns × ${STEPS_PER_TURN} steps each, and /infill bursts, on 2 slots`,
    mode: 'llama-server',
    models: [model],
    slotsPerModel: 2,
    conversations,
    jobs,
    concurrency: 2,
    maxTokens: 48,
    agents: (name) => new Agents(loadAgentTraces(), name, TOOL_RESULT_WORDS, 48),
  };
}

/**
 * `sidecheap` (issue 8, item 4): Qwen Code on 2 slots with one client, and before each of its memory extractions an
 * IDE completion, so when the big side request arrives a cheaper slot than the live conversation exists (the one-off
 * completion's), and that slot is the more recently used one: least-recently-used picks the conversation's. Each
 * user turn is its 3 steps, one /infill, then (from the 2nd) the memory extraction; the conversation has turns
 * still to come after every side request but the last.
 */
export function sidecheapWorkload(): Workload {
  const model = 'model-a';
  const jobs: Job[] = [];
  let seed = 1;
  for (let round = 0; round < AGENT_ROUNDS; round++) {
    for (let step = 0; step < STEPS_PER_TURN; step++)
      jobs.push({ kind: 'turn', conversation: 'qwen', turn: round * STEPS_PER_TURN + step, group: `qwen/${round}` });
    jobs.push({
      kind: 'small',
      model,
      seed: infillSeed(round, 0),
      group: `ide/${round}`,
      agent: 'ide',
      side: 'infill',
    });
    jobs.push({ kind: 'small', model, seed: seed++, group: `qwen-memory/${round}`, agent: 'qwen', side: 'memory' });
  }
  return {
    name: 'sidecheap',
    description: `Qwen Code (chat + memory extraction) from the agent traces, ${AGENT_ROUNDS} user turns × ${STEPS_PER_TURN} steps, an /infill before each memory extraction, 1 client on 2 slots`,
    mode: 'llama-server',
    models: [model],
    slotsPerModel: 2,
    conversations: [{ id: 'qwen', model, startWords: 0, turnWords: TOOL_RESULT_WORDS }],
    jobs,
    concurrency: 1,
    maxTokens: 48,
    agents: (name) => new Agents(loadAgentTraces(), name, TOOL_RESULT_WORDS, 48),
  };
}

/** A seeded tool output of `n` words in lines, like a command's or a file's. */
function toolOutput(n: number, seed: number): string {
  const text = words(n, seed).split(' ');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 12) lines.push(text.slice(i, i + 12).join(' '));
  return lines.join('\n');
}

/** The next user prompt of an agent's user turn `round` (> 0). */
const userPrompt = (agent: string, round: number) => `${words(25, hash(`${agent}/prompt/${round}`))}.`;

class Agents implements AgentSessions {
  private readonly sessions: Record<MainAgent, Session>;

  constructor(
    traces: AgentTraces,
    private readonly model: string,
    toolWords: number,
    maxTokens: number,
  ) {
    this.sessions = {
      claude: new ClaudeSession(traces, model, toolWords, maxTokens),
      codex: new CodexSession(traces, model, toolWords, maxTokens),
      opencode: new OpencodeSession(traces, model, toolWords, maxTokens),
      qwen: new QwenSession(traces, model, toolWords, maxTokens),
    };
  }

  request(job: Job): AgentRequest {
    if (job.kind === 'turn') {
      const round = Math.floor(job.turn / STEPS_PER_TURN);
      return this.sessions[job.conversation as MainAgent].request(round, job.turn % STEPS_PER_TURN);
    }
    if (job.side === 'title') return (this.sessions.opencode as OpencodeSession).title();
    if (job.side === 'memory') return (this.sessions.qwen as QwenSession).memoryExtraction(job.seed);
    if (job.side === 'infill') return infill(this.model, job.seed);
    throw new Error(`agents: no request for job ${JSON.stringify(job)}`);
  }

  answered(job: Job, reply: string): void {
    if (job.kind !== 'turn') return;
    this.sessions[job.conversation as MainAgent].answered(
      Math.floor(job.turn / STEPS_PER_TURN),
      job.turn % STEPS_PER_TURN,
      reply,
    );
  }
}

/** One agent's conversation: the request of a step, and what the client appends once it is answered. */
abstract class Session {
  constructor(
    protected readonly model: string,
    protected readonly toolWords: number,
    protected readonly maxTokens: number,
    protected readonly name: string,
  ) {}

  request(round: number, step: number): AgentRequest {
    if (step === 0 && round > 0) this.appendUser(userPrompt(this.name, round));
    return this.build();
  }

  /** After a step: the assistant's text with a tool call and its result, or (last step) the final answer alone. */
  answered(round: number, step: number, reply: string): void {
    if (step + 1 < STEPS_PER_TURN) {
      const id = `${round}_${step}`;
      this.appendToolStep(reply, id, toolOutput(this.toolWords, hash(`${this.name}/tool/${id}`)));
    } else {
      this.appendFinal(reply);
    }
  }

  protected abstract build(): AgentRequest;
  protected abstract appendUser(text: string): void;
  protected abstract appendToolStep(reply: string, id: string, output: string): void;
  protected abstract appendFinal(reply: string): void;
}

/** Claude Code: the body of its first request, `cache_control` on the last block of the last message. */
class ClaudeSession extends Session {
  private readonly base: Json;
  private readonly messages: Json[];
  private readonly toolUse: Json;
  private readonly headers: Record<string, string>;

  constructor(traces: AgentTraces, model: string, toolWords: number, maxTokens: number) {
    super(model, toolWords, maxTokens, 'claude');
    const [first, followUp] = traces.claude;
    this.base = clone(first.body);
    this.messages = clone(first.body.messages as Json[]);
    this.toolUse = (followUp.body.messages as Json[])
      .find((m) => m.role === 'assistant')!
      .content.find((b: Json) => b.type === 'tool_use');
    this.headers = pick(first.headers, ['anthropic-version', 'anthropic-beta', 'x-claude-code-session-id', 'x-app']);
  }

  protected build(): AgentRequest {
    const messages = clone(this.messages);
    for (const m of messages) if (Array.isArray(m.content)) for (const b of m.content) delete b.cache_control;
    const last = messages.at(-1)!;
    if (Array.isArray(last.content)) last.content.at(-1).cache_control = { type: 'ephemeral' };
    return {
      api: 'messages',
      path: '/v1/messages?beta=true',
      headers: this.headers,
      body: { ...this.base, model: this.model, messages, max_tokens: this.maxTokens, stream: true },
    };
  }

  protected appendUser(text: string): void {
    this.messages.push({ role: 'user', content: [{ type: 'text', text }] });
  }

  protected appendToolStep(reply: string, id: string, output: string): void {
    const toolUseId = `toolu_${id}`;
    this.messages.push(
      {
        role: 'assistant',
        content: [
          { type: 'text', text: reply },
          { ...clone(this.toolUse), id: toolUseId },
        ],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUseId, content: output }] },
    );
  }

  protected appendFinal(reply: string): void {
    this.messages.push({ role: 'assistant', content: [{ type: 'text', text: reply }] });
  }
}

/** Codex: its input items grow by the output items it received (store: false) and the function call outputs. */
class CodexSession extends Session {
  private readonly base: Json;
  private readonly input: Json[];
  private readonly call: Json;
  private readonly headers: Record<string, string>;

  constructor(traces: AgentTraces, model: string, toolWords: number, maxTokens: number) {
    super(model, toolWords, maxTokens, 'codex');
    const [first, followUp] = traces.codex;
    this.base = clone(first.body);
    this.input = clone(first.body.input as Json[]);
    this.call = (followUp.body.input as Json[]).find((i) => i.type === 'function_call')!;
    this.headers = pick(first.headers, ['session-id', 'thread-id', 'originator']);
  }

  protected build(): AgentRequest {
    return {
      api: 'responses',
      path: '/v1/responses',
      headers: this.headers,
      body: {
        ...this.base,
        model: this.model,
        input: clone(this.input),
        stream: true,
        max_output_tokens: this.maxTokens,
      },
    };
  }

  protected appendUser(text: string): void {
    this.input.push({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });
  }

  protected appendToolStep(reply: string, id: string, output: string): void {
    this.appendFinal(reply);
    const callId = `call_${id}`;
    this.input.push(
      { ...clone(this.call), id: `fc_${id}`, call_id: callId },
      { type: 'function_call_output', call_id: callId, output },
    );
  }

  protected appendFinal(reply: string): void {
    this.input.push({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: reply }] });
  }
}

/** Chat completions clients (opencode, Qwen Code): assistant message with tool_calls, then a `tool` message. */
abstract class ChatSession extends Session {
  protected readonly base: Json;
  protected readonly messages: Json[];
  private readonly call: Json;
  protected readonly headers: Record<string, string>;

  constructor(
    first: Json,
    followUp: Json,
    headers: Record<string, string>,
    model: string,
    toolWords: number,
    maxTokens: number,
    name: string,
  ) {
    super(model, toolWords, maxTokens, name);
    this.base = clone(first.body);
    this.messages = clone(first.body.messages as Json[]);
    this.call = (followUp.body.messages as Json[]).find((m) => m.tool_calls)!.tool_calls[0];
    this.headers = headers;
  }

  protected build(): AgentRequest {
    return {
      api: 'chat',
      path: '/v1/chat/completions',
      headers: this.headers,
      body: {
        ...this.base,
        model: this.model,
        messages: clone(this.messages),
        max_tokens: this.maxTokens,
        stream: true,
        stream_options: { include_usage: true },
      },
    };
  }

  protected appendToolStep(reply: string, id: string, output: string): void {
    const callId = `call_${id}`;
    this.messages.push(
      { role: 'assistant', content: reply, tool_calls: [{ ...clone(this.call), id: callId }] },
      this.toolMessage(callId, output),
    );
  }

  protected appendFinal(reply: string): void {
    this.messages.push({ role: 'assistant', content: reply });
  }

  protected abstract toolMessage(callId: string, output: string): Json;
}

class OpencodeSession extends ChatSession {
  private readonly titleBody: Json;

  constructor(traces: AgentTraces, model: string, toolWords: number, maxTokens: number) {
    const [title, first, followUp] = traces.opencode;
    super(
      first,
      followUp,
      pick(first.headers, ['x-session-id', 'x-session-affinity']),
      model,
      toolWords,
      maxTokens,
      'opencode',
    );
    this.titleBody = clone(title.body);
  }

  /** The small title request opencode sends when a session starts: its own system prompt, the first prompt. */
  title(): AgentRequest {
    return {
      api: 'chat',
      path: '/v1/chat/completions',
      headers: this.headers,
      body: {
        ...this.titleBody,
        model: this.model,
        max_tokens: this.maxTokens,
        stream: true,
        stream_options: { include_usage: true },
      },
    };
  }

  protected appendUser(text: string): void {
    this.messages.push({ role: 'user', content: text });
  }

  protected toolMessage(callId: string, output: string): Json {
    return { role: 'tool', tool_call_id: callId, content: output };
  }
}

/** Qwen Code's memory extraction prompt: ~23k characters (no capture of it exists; its size is from agent-clients.md). */
const MEMORY_SYSTEM_WORDS = 3700;
const MEMORY_TOOLS = ['read_memory', 'write_memory', 'list_memories', 'delete_memory'];

class QwenSession extends ChatSession {
  constructor(traces: AgentTraces, model: string, toolWords: number, maxTokens: number) {
    const [first, followUp] = traces.qwen;
    super(first, followUp, {}, model, toolWords, maxTokens, 'qwen');
  }

  protected appendUser(text: string): void {
    this.messages.push({ role: 'user', content: [{ type: 'text', text }] });
  }

  protected toolMessage(callId: string, output: string): Json {
    return { role: 'tool', tool_call_id: callId, content: [{ type: 'text', text: output }] };
  }

  /**
   * After a user turn: its own system prompt, 4 tools, and the conversation so far (without the main system prompt)
   * as text in one user message, so it shares no prefix with the main request.
   */
  memoryExtraction(seed: number): AgentRequest {
    const history = this.messages
      .slice(1)
      .map((m) => `[${m.role}] ${textOf(m.content)}${m.tool_calls ? ` ${JSON.stringify(m.tool_calls)}` : ''}`)
      .join('\n');
    return {
      api: 'chat',
      path: '/v1/chat/completions',
      headers: {},
      body: {
        model: this.model,
        messages: [
          { role: 'system', content: words(MEMORY_SYSTEM_WORDS, 424242) },
          {
            role: 'user',
            content: [
              { type: 'text', text: `Extract what is worth remembering from this conversation (${seed}):\n${history}` },
            ],
          },
        ],
        tools: MEMORY_TOOLS.map((name) => ({
          type: 'function',
          function: {
            name,
            description: words(30, hash(name)),
            parameters: { type: 'object', properties: { key: { type: 'string' }, value: { type: 'string' } } },
          },
        })),
        max_tokens: this.maxTokens,
        stream: true,
        stream_options: { include_usage: true },
      },
    };
  }
}

/**
 * One request of an IDE's completion burst (llama.vscode): the same snippets of context and suffix within a burst
 * (a burst per round, another file each time), the prefix growing by a few words per keystroke pause.
 */
function infill(model: string, seed: number): AgentRequest {
  const { round, keystroke } = ofInfillSeed(seed);
  const file = hash(`ide/${round}`);
  return {
    api: 'infill',
    path: '/infill',
    headers: {},
    body: {
      model,
      input_extra: [0, 1].map((i) => ({ filename: `src/file${round}_${i}.ts`, text: toolOutput(500, file + i) })),
      // Files differ in length from burst to burst (and so do the requests' token counts).
      input_prefix: `${toolOutput(200 + 17 * round, file + 3)}\n${words(3 * (keystroke + 1), file + 7)}`,
      input_suffix: toolOutput(150, file + 4),
      prompt: '',
      n_predict: 16,
      cache_prompt: true,
      stream: false,
    },
  };
}

const infillSeed = (round: number, keystroke: number) => 1000 + round * 10 + keystroke;
const ofInfillSeed = (seed: number) => ({ round: Math.floor((seed - 1000) / 10), keystroke: seed % 10 });

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p: Json) => (typeof p.text === 'string' ? p.text : '')).join('');
  return '';
}

function pick(headers: Record<string, string>, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.filter((n) => headers[n] !== undefined).map((n) => [n, headers[n]!]));
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
