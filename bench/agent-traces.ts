/**
 * The scrubbed request captures of real coding agents (`../shared/agent-traces/` beside the repository, or
 * AGENT_TRACES_DIR), read as the templates of the `agents` workload. Missing files fail the run with a message that
 * says where they were looked for: the workload has no stand-in for them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One captured request: method, path, query, headers (secrets replaced) and body. */
export interface TraceRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: Record<string, any>;
}

/** The captures the workload replays, by what they are. */
export interface AgentTraces {
  dir: string;
  /** Claude Code: the first request, and the follow-up carrying a tool result (its tool_use is the template). */
  claude: [TraceRequest, TraceRequest];
  /** Codex: two /v1/responses steps of one turn (a function call and its output). */
  codex: [TraceRequest, TraceRequest];
  /** opencode: the title request, the main request, the follow-up after a tool call. */
  opencode: [TraceRequest, TraceRequest, TraceRequest];
  /** Qwen Code: the main request and the follow-up after a tool call. */
  qwen: [TraceRequest, TraceRequest];
}

const FILES = {
  claude: ['claude-tool/002-v1_messages.json', 'claude-tool/003-v1_messages.json'],
  codex: ['codex/001-v1_responses.json', 'codex/002-v1_responses.json'],
  opencode: [
    'opencode/001-v1_chat_completions.json',
    'opencode/002-v1_chat_completions.json',
    'opencode/003-v1_chat_completions.json',
  ],
  qwen: ['qwen/001-v1_chat_completions.json', 'qwen/002-v1_chat_completions.json'],
} as const;

/** Where the traces are: AGENT_TRACES_DIR, else `../shared/agent-traces` next to the repository (dist/bench/ → ../../..). */
export function tracesDir(): string {
  return (
    process.env.AGENT_TRACES_DIR ?? resolve(fileURLToPath(new URL('../../../shared/agent-traces', import.meta.url)))
  );
}

/** Load every template, or throw naming the missing files and the directory. */
export function loadAgentTraces(dir = tracesDir()): AgentTraces {
  const missing = Object.values(FILES)
    .flat()
    .filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0) {
    throw new Error(
      `the agents workload needs the agent traces in ${dir} (set AGENT_TRACES_DIR to move it); missing: ${missing.join(', ')}`,
    );
  }
  const read = (f: string): TraceRequest => {
    const t = JSON.parse(readFileSync(join(dir, f), 'utf8')) as TraceRequest;
    if (typeof t.body !== 'object' || t.body === null) throw new Error(`${join(dir, f)} has no request body`);
    return t;
  };
  const all = <K extends keyof typeof FILES>(k: K) => FILES[k].map(read);
  return {
    dir,
    claude: all('claude') as AgentTraces['claude'],
    codex: all('codex') as AgentTraces['codex'],
    opencode: all('opencode') as AgentTraces['opencode'],
    qwen: all('qwen') as AgentTraces['qwen'],
  };
}
