/**
 * The benchmark's workloads: deterministic, seeded conversations and the order in which their turns are sent.
 * A turn is either a conversation turn (the whole history plus a new user message) or a small one-off request
 * (titles, autocomplete). Replies come from the backend, so a conversation's history is built while it runs.
 */
import { words } from '../test/support/text.js';
import { agentsWorkload, sidecheapWorkload } from './agents.js';

export interface ConversationSpec {
  id: string;
  model: string;
  /** Words of the first user message (about as many tokens in the simulator). */
  startWords: number;
  /** Words of each later user message. */
  turnWords: number;
}

export type Job =
  /** `burst`: consecutive turns of one conversation with the same burst number are sent by one client in a row. */
  | { kind: 'turn'; conversation: string; turn: number; burst?: number; group?: string }
  /** A small one-off request; in `agents`, any side request (`side`) of an agent (`agent`), big or not. */
  | { kind: 'small'; model: string; seed: number; group?: string; agent?: string; side?: SideKind };

/** The `agents` workload's side requests: opencode's title, Qwen Code's memory extraction, an IDE's /infill. */
export type SideKind = 'title' | 'memory' | 'infill';

export interface Workload {
  name: string;
  description: string;
  mode: 'llama-server' | 'llama-swap';
  models: string[];
  slotsPerModel: number;
  conversations: ConversationSpec[];
  /** Jobs in the order they are handed to the clients. */
  jobs: Job[];
  /** Clients sending at once (each takes the next job; a conversation's turns never overlap). */
  concurrency: number;
  /** Reply length per request. */
  maxTokens: number;
  /** Each client's pause after an answer before its next request (a tool running, a user reading); none by default. */
  thinkMs?: number;
  /** Restart backend and proxy before these job indexes. */
  restartsBefore?: number[];
  /** Overrides of the simulator's cost model for this workload. */
  cost?: Record<string, number>;
  /** Time scale override (overhead runs in real time). */
  timeScale?: number;
  /** Extra fields of every request body (the real bench asks for temperature 0: replies of the same length and words). */
  requestBody?: Record<string, unknown>;
  /**
   * `agents` only: the agent sessions that build each job's request from the captured traces (loaded when the
   * workload runs, not when it is listed). Jobs with the same `group` are sent by one client in a row.
   */
  agents?: (model: string) => AgentSessions;
}

/** Builds the requests of the `agents` workload's jobs and takes their answers (see agents.ts). */
export interface AgentSessions {
  request(job: Job): AgentRequest;
  answered(job: Job, reply: string): void;
}

/** One request of an agent: the API it speaks, where it goes and what it sends. */
export interface AgentRequest {
  api: 'chat' | 'messages' | 'responses' | 'infill';
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export interface WorkloadSize {
  /** Words of a conversation's first message (~16k tokens by default). */
  startWords: number;
  /** Words added per turn (~500 tokens with the reply). */
  turnWords: number;
}

const TURNS_PER_BURST = 4;
const BURSTS = 3;

function conversations(
  n: number,
  size: WorkloadSize,
  model: (i: number) => string = () => 'model-a',
): ConversationSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `c${i}`,
    model: model(i),
    startWords: size.startWords,
    turnWords: size.turnWords,
  }));
}

/** 8 agents on 2 slots, each working in bursts of 4 consecutive turns, bursts of different agents interleaved. */
function contention(size: WorkloadSize): Workload {
  const convs = conversations(8, size);
  const jobs: Job[] = [];
  for (let burst = 0; burst < BURSTS; burst++) {
    for (const c of convs) {
      for (let t = 0; t < TURNS_PER_BURST; t++)
        jobs.push({ kind: 'turn', conversation: c.id, turn: burst * TURNS_PER_BURST + t, burst });
    }
  }
  return base('contention', '8 agent conversations on 2 slots, bursts of 4 turns interleaved', convs, jobs, 2);
}

/** The same conversations, every turn to a different conversation: each turn needs its state back. */
function roundrobin(size: WorkloadSize): Workload {
  const convs = conversations(8, size);
  const jobs: Job[] = [];
  for (let turn = 0; turn < 4; turn++) for (const c of convs) jobs.push({ kind: 'turn', conversation: c.id, turn });
  return base('roundrobin', '8 conversations on 2 slots, strict round robin', convs, jobs, 2);
}

/** Two models behind llama-swap, alternating; each switch unloads the other model. */
function swap(size: WorkloadSize): Workload {
  const convs = conversations(4, size, (i) => (i % 2 === 0 ? 'model-a' : 'model-b'));
  const jobs: Job[] = [];
  for (let turn = 0; turn < 3; turn++) for (const c of convs) jobs.push({ kind: 'turn', conversation: c.id, turn });
  return {
    ...base('swap', '4 conversations on 2 models behind llama-swap, alternating', convs, jobs, 1),
    mode: 'llama-swap',
    models: ['model-a', 'model-b'],
  };
}

/** Backend and proxy restarted between rounds. */
function restart(size: WorkloadSize): Workload {
  const convs = conversations(4, size);
  const jobs: Job[] = [];
  const restartsBefore: number[] = [];
  for (let round = 0; round < 3; round++) {
    if (round > 0) restartsBefore.push(jobs.length);
    for (let t = 0; t < 2; t++)
      for (const c of convs) jobs.push({ kind: 'turn', conversation: c.id, turn: round * 2 + t });
  }
  return {
    ...base('restart', '4 conversations, backend and proxy restarted between 3 rounds', convs, jobs, 2),
    restartsBefore,
  };
}

/** Big conversations with many small requests (titles, autocomplete) interleaved. */
function noise(size: WorkloadSize): Workload {
  const convs = conversations(4, size);
  const jobs: Job[] = [];
  let seed = 1;
  for (let turn = 0; turn < 4; turn++) {
    for (const c of convs) {
      jobs.push({ kind: 'turn', conversation: c.id, turn });
      jobs.push({ kind: 'small', model: c.model, seed: seed++ }, { kind: 'small', model: c.model, seed: seed++ });
    }
  }
  return base('noise', '4 big conversations on 2 slots with 2 small requests after every turn', convs, jobs, 2);
}

/** One conversation on one slot: nothing to gain, so this measures what the proxy adds. */
function overhead(): Workload {
  const convs = [{ id: 'c0', model: 'model-a', startWords: 600, turnWords: 30 }];
  const jobs: Job[] = Array.from({ length: 40 }, (_, turn) => ({ kind: 'turn' as const, conversation: 'c0', turn }));
  return {
    ...base('overhead', '1 conversation on 1 slot, real time: added latency and streaming throughput', convs, jobs, 1),
    slotsPerModel: 1,
    maxTokens: 64,
    timeScale: 1,
    cost: { prefillMsPerToken: 0.002, decodeMsPerToken: 0.5, saveMsPerMB: 0.05, restoreMsPerMB: 0.05, modelLoadMs: 0 },
  };
}

function base(
  name: string,
  description: string,
  convs: ConversationSpec[],
  jobs: Job[],
  concurrency: number,
): Workload {
  return {
    name,
    description,
    mode: 'llama-server',
    models: ['model-a'],
    slotsPerModel: 2,
    conversations: convs,
    jobs,
    concurrency,
    maxTokens: 48,
  };
}

/** Every workload by name. */
export function allWorkloads(size: WorkloadSize): Workload[] {
  return [
    contention(size),
    roundrobin(size),
    swap(size),
    restart(size),
    noise(size),
    overhead(),
    agentsWorkload(),
    sidecheapWorkload(),
  ];
}

/** The user message of turn `turn` of a conversation (seeded by conversation and turn). */
export function userMessage(c: ConversationSpec, turn: number): string {
  const seed = hashSeed(`${c.id}/${turn}`);
  return turn === 0 ? words(c.startWords, seed) : words(c.turnWords, seed);
}

/** A small request's prompt. */
export function smallPrompt(seed: number): string {
  return `Write a five word title for: ${words(12, 1_000_000 + seed)}`;
}

function hashSeed(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
