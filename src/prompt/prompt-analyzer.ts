/**
 * Prompt analysis with memory: a conversation's next request repeats every earlier message and adds one or two, so
 * the analysis state is kept in a trie of message texts (per model) and a request continues from the longest run of
 * leading messages seen before. Hashing a 20k-word history then costs what the new messages cost, not ~4 ms every
 * turn. The result is exactly `analyzePrompt`'s (a test checks it).
 *
 * Bounded in every dimension, because a client controls the input:
 * - past `maxNodes` nodes or `maxChars` characters of text, the least recently used branches are dropped (a dropped
 *   branch only costs one full analysis again); pruning walks the trie with an explicit stack, never recursion, so
 *   no depth of conversation can overflow the call stack;
 * - a node keeps a (forked) state only every `CHECKPOINT_EVERY` messages and at the end of each request, so memory
 *   grows with the text, not with messages × blocks;
 * - a request that would add more than a quarter of `maxNodes` is analysed without the memo.
 * Should the memo itself ever fail, it is emptied and the request is analysed without it: no input leaves state
 * behind that breaks later requests.
 */
import { PromptState, analyzeParts, canonicalParts, requestModel } from './prompt-analysis.js';
import type { PromptAnalysis, PromptAnalysisOptions } from './prompt-analysis.js';

/** A chat body (`messages`), or any API's canonical prompt parts. */
export interface PromptInput {
  model?: unknown;
  messages?: unknown[];
  parts?: readonly string[];
}

interface MemoNode {
  /** The analysis state after this message, when kept (never fed: a request continues from a fork of it). */
  state?: PromptState;
  /** The next messages seen after this one, by text. */
  children: Map<string, MemoNode>;
  /** The map that holds this node, and its key there: to drop it. */
  parent: Map<string, MemoNode>;
  text: string;
  /** 1 for a first message. */
  depth: number;
  lastUsed: number;
}

export interface PromptAnalyzerLimits {
  /** Most memo nodes (one per distinct message position) kept. */
  maxNodes: number;
  /** Most characters of message text kept (about 2 bytes each). */
  maxChars: number;
}

/** About 32 long conversations' worth; a few tens of MB at most. */
const DEFAULT_ANALYZER_LIMITS: PromptAnalyzerLimits = { maxNodes: 20_000, maxChars: 16 * 1024 * 1024 };

/** A state is kept every this many messages: resuming re-hashes at most this many known messages. */
const CHECKPOINT_EVERY = 16;

export class PromptAnalyzer {
  /** Model → first messages. The key hash starts with the model, so a trie per model. */
  private readonly roots = new Map<string, Map<string, MemoNode>>();
  private nodes = 0;
  private chars = 0;
  private tick = 0;

  constructor(
    private readonly opts: PromptAnalysisOptions,
    private readonly limits: PromptAnalyzerLimits = DEFAULT_ANALYZER_LIMITS,
  ) {}

  /**
   * Same result as `analyzePrompt(body, opts)`. `parts`, when given, are the canonical parts already (another API's
   * prompt, see generation/adapter.ts) and `messages` is not read.
   */
  analyze(body: PromptInput): PromptAnalysis {
    try {
      return this.analyzeWithMemo(body);
    } catch {
      this.clear();
      return analyzeParts(
        requestModel(body, this.opts.modelId),
        body.parts ?? canonicalParts(body.messages ?? []),
        this.opts,
      );
    }
  }

  /** Memo size (models with a trie, nodes, characters of text), for tests and logs. */
  size(): { models: number; nodes: number; chars: number } {
    return { models: this.roots.size, nodes: this.nodes, chars: this.chars };
  }

  private analyzeWithMemo(body: PromptInput): PromptAnalysis {
    const model = requestModel(body, this.opts.modelId);
    const parts = body.parts ? body.parts.filter((p) => p !== '') : canonicalParts(body.messages ?? []);
    let level = this.roots.get(model) ?? new Map<string, MemoNode>();
    const now = ++this.tick;
    // Walk the known messages; remember the deepest one with a kept state.
    let last: MemoNode | undefined;
    let resume: MemoNode | undefined;
    let known = 0;
    for (; known < parts.length; known++) {
      const node = level.get(parts[known]!);
      if (!node) break;
      node.lastUsed = now;
      last = node;
      if (node.state) resume = node;
      level = node.children;
    }
    if (parts.length - known > this.limits.maxNodes / 4) return analyzeParts(model, parts, this.opts);

    const state = resume?.state ? resume.state.fork() : PromptState.start(model, this.opts.wordsPerBlock);
    for (let i = resume?.depth ?? 0; i < known; i++) state.add(parts[i]!);
    if (last && known === parts.length && !last.state) last.state = state.fork();

    let parent = known < parts.length ? (last?.children ?? this.rootOf(model)) : undefined;
    for (let i = known; parent && i < parts.length; i++) {
      const text = parts[i]!;
      state.add(text);
      const depth = i + 1;
      const node: MemoNode = { children: new Map(), parent, text, depth, lastUsed: now };
      if (depth % CHECKPOINT_EVERY === 0 || depth === parts.length) node.state = state.fork();
      parent.set(text, node);
      parent = node.children;
      this.nodes++;
      this.chars += text.length;
    }
    if (this.nodes > this.limits.maxNodes || this.chars > this.limits.maxChars) this.prune();
    return state.finish(model, this.opts.bigThresholdWords);
  }

  /**
   * Drop least recently used nodes (with what follows them) until three quarters of each limit are left. A node
   * is never used later than its parent (a lookup walks from the root), so this drops conversations' tails first.
   */
  private prune(): void {
    const all: MemoNode[] = [];
    const pending: Array<Map<string, MemoNode>> = [...this.roots.values()];
    for (let level = pending.pop(); level; level = pending.pop()) {
      for (const node of level.values()) {
        all.push(node);
        pending.push(node.children);
      }
    }
    all.sort((a, b) => a.lastUsed - b.lastUsed || b.depth - a.depth);
    const nodeTarget = Math.floor(this.limits.maxNodes * 0.75);
    const charTarget = Math.floor(this.limits.maxChars * 0.75);
    for (const node of all) {
      if (this.nodes <= nodeTarget && this.chars <= charTarget) break;
      if (node.parent.get(node.text) === node) this.drop(node);
    }
    for (const [model, level] of this.roots) if (level.size === 0) this.roots.delete(model);
  }

  /** Removes a node and everything below it. */
  private drop(top: MemoNode): void {
    top.parent.delete(top.text);
    const pending = [top];
    for (let node = pending.pop(); node; node = pending.pop()) {
      this.nodes--;
      this.chars -= node.text.length;
      for (const child of node.children.values()) pending.push(child);
    }
  }

  private rootOf(model: string): Map<string, MemoNode> {
    let root = this.roots.get(model);
    if (!root) this.roots.set(model, (root = new Map()));
    return root;
  }

  private clear(): void {
    this.roots.clear();
    this.nodes = 0;
    this.chars = 0;
  }
}
