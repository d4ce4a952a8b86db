/**
 * The real bench's workloads, sized for a small CPU model: conversations that grow to about 4k tokens, on a
 * server whose RAM cache is smaller than their working set. Same job model as the simulator's workloads
 * (workloads.ts); replies are asked for at temperature 0, and the tiny model always runs to max_tokens unless a
 * stop string is given (`--stop`).
 */
import type { ConversationSpec, Job, Workload } from './workloads.js';

export interface RealSize {
  /** Words of a conversation's first message (the shared model makes about 1.02 tokens of a word). */
  startWords: number;
  /** Words of each later user message. */
  turnWords: number;
  /** Turns per conversation in the contention workloads. */
  turns: number;
  /** Rounds of the restart workload (the server restarts between rounds). */
  restartRounds: number;
  /** Idle time after a round's last answer before the server restarts. */
  restartGapMs: number;
  /** Reply tokens per request (default 48; the overhead workload asks for 64). */
  maxTokens?: number;
  /**
   * A stop string sent with every request. The tiny model never emits its end-of-generation token, so every reply
   * runs to max_tokens, an ending the proxy can see coming (`n_remain`); a common stop string ends replies early at
   * places nobody can foresee, as a real model's end of generation does.
   */
  stop?: string;
  /** Each client's pause after an answer before its next request (see Workload.thinkMs); overhead has none. */
  thinkMs?: number;
}

export const FULL_SIZE: RealSize = { startWords: 2600, turnWords: 350, turns: 4, restartRounds: 3, restartGapMs: 5000 };
export const QUICK_SIZE: RealSize = {
  startWords: 1500,
  turnWords: 250,
  turns: 3,
  restartRounds: 2,
  restartGapMs: 5000,
};

/** Tokens of template and reply per turn besides the user's words; and tokens per word, both for this model. */
const TURN_OVERHEAD_TOKENS = 12;
const TOKENS_PER_WORD = 1.02;
const MODEL = 'tiny-chat';
const MAX_TOKENS = 48;

/** A real workload plus what the bench needs to size the server for it. */
export interface RealWorkload extends Workload {
  /** Estimated tokens of every conversation's final state: the working set the RAM cache is compared with. */
  workingSetTokens: number;
  restartGapMs?: number;
}

export function realWorkloads(size: RealSize): RealWorkload[] {
  return [roundrobin(size), bursty(size), restartWithGap(size), noise(size), overhead(size.stop)];
}

/** 6 conversations, strict round robin: every turn needs its state back. */
function roundrobin(size: RealSize): RealWorkload {
  const convs = conversations(6, size);
  const jobs: Job[] = [];
  for (let turn = 0; turn < size.turns; turn++)
    for (const c of convs) jobs.push({ kind: 'turn', conversation: c.id, turn });
  return base(
    'roundrobin',
    `${convs.length} conversations × ${size.turns} turns, strict round robin, 2 clients`,
    convs,
    jobs,
    size,
  );
}

/** 8 agents working in bursts of 2 back-to-back turns, bursts of different agents interleaved. */
function bursty(size: RealSize): RealWorkload {
  const convs = conversations(8, size);
  const jobs: Job[] = [];
  const bursts = Math.ceil(size.turns / 2);
  for (let burst = 0; burst < bursts; burst++) {
    for (const c of convs) {
      for (let turn = burst * 2; turn < Math.min(size.turns, burst * 2 + 2); turn++)
        jobs.push({ kind: 'turn', conversation: c.id, turn, burst });
    }
  }
  return base('bursty', `${convs.length} agents × ${size.turns} turns in bursts of 2, 2 clients`, convs, jobs, size);
}

/** 4 conversations, one turn each per round; the server (not the proxy) restarts a gap after every round. */
function restartWithGap(size: RealSize): RealWorkload {
  const convs = conversations(4, size);
  const jobs: Job[] = [];
  const restartsBefore: number[] = [];
  for (let round = 0; round < size.restartRounds; round++) {
    if (round > 0) restartsBefore.push(jobs.length);
    for (const c of convs) jobs.push({ kind: 'turn', conversation: c.id, turn: round });
  }
  const gap = `${size.restartGapMs / 1000} s`;
  return {
    ...base(
      'restart',
      `${convs.length} conversations, ${size.restartRounds} rounds of 1 turn; llama-server killed and restarted ${gap} after each round (the proxy keeps running)`,
      convs,
      jobs,
      size,
      size.restartRounds,
    ),
    restartsBefore,
    restartGapMs: size.restartGapMs,
  };
}

/** 4 big conversations with 2 small requests (titles) after every turn. */
function noise(size: RealSize): RealWorkload {
  const convs = conversations(4, size);
  const jobs: Job[] = [];
  let seed = 1;
  for (let turn = 0; turn < size.turns; turn++) {
    for (const c of convs) {
      jobs.push({ kind: 'turn', conversation: c.id, turn });
      jobs.push({ kind: 'small', model: MODEL, seed: seed++ }, { kind: 'small', model: MODEL, seed: seed++ });
    }
  }
  return base(
    'noise',
    `${convs.length} conversations × ${size.turns} turns, 2 small requests after every turn, 2 clients`,
    convs,
    jobs,
    size,
  );
}

/** One conversation, one client: nothing to gain, so this measures what the proxy adds. */
function overhead(stop: string | undefined): RealWorkload {
  const size = { startWords: 600, turnWords: 30, ...(stop !== undefined && { stop }) };
  const convs = [{ id: 'c0', model: MODEL, startWords: size.startWords, turnWords: size.turnWords }];
  const turns = 20;
  const jobs: Job[] = Array.from({ length: turns }, (_, turn) => ({ kind: 'turn' as const, conversation: 'c0', turn }));
  return {
    ...base(
      'overhead',
      `1 conversation × ${turns} turns, 1 client: latency and streaming throughput the proxy adds`,
      convs,
      jobs,
      { ...size, turns },
    ),
    concurrency: 1,
    maxTokens: 64,
  };
}

function conversations(n: number, size: Pick<RealSize, 'startWords' | 'turnWords'>): ConversationSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `c${i}`,
    model: MODEL,
    startWords: size.startWords,
    turnWords: size.turnWords,
  }));
}

function base(
  name: string,
  description: string,
  convs: ConversationSpec[],
  jobs: Job[],
  size: Pick<RealSize, 'startWords' | 'turnWords' | 'turns' | 'maxTokens' | 'stop' | 'thinkMs'>,
  turns = size.turns,
): RealWorkload {
  const perConversation =
    TOKENS_PER_WORD * (size.startWords + (turns - 1) * size.turnWords) +
    turns * ((size.maxTokens ?? MAX_TOKENS) + TURN_OVERHEAD_TOKENS);
  return {
    name,
    description,
    mode: 'llama-server',
    models: [MODEL],
    slotsPerModel: 0, // the server decides (-np, or its default)
    conversations: convs,
    jobs,
    concurrency: 2,
    maxTokens: size.maxTokens ?? MAX_TOKENS,
    ...(size.thinkMs && { thinkMs: size.thinkMs }),
    requestBody: { temperature: 0, ...(size.stop !== undefined && { stop: [size.stop] }) },
    workingSetTokens: Math.round(convs.length * perConversation),
  };
}
