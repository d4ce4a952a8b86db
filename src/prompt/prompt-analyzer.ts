/**
 * Prompt analysis with memory: a conversation's next request repeats every earlier message and adds one or two, so
 * the analysis state after each message is kept in a trie of message texts (per model) and a request continues
 * from the longest run of leading messages seen before. Hashing a 20k-word history then costs what the new
 * messages cost, not ~4 ms every turn. The result is exactly `analyzePrompt`'s (a test checks it).
 *
 * The trie holds the message texts themselves, so it is bounded: past `maxNodes` nodes or `maxChars` characters of
 * text, the least recently used branches are dropped (a dropped branch only costs one full analysis again).
 */
import { PromptState, canonicalParts, requestModel } from './prompt-analysis.js';
import type { PromptAnalysis, PromptAnalysisOptions } from './prompt-analysis.js';

interface MemoNode {
  /** The analysis state after this message (never fed: a request continues from a fork of it). */
  state: PromptState;
  /** The next messages seen after this one, by text. */
  children: Map<string, MemoNode>;
  /** The map that holds this node, and its key there: to drop it. */
  parent: Map<string, MemoNode>;
  text: string;
  lastUsed: number;
}

export interface PromptAnalyzerLimits {
  /** Most memo nodes (one per distinct message position) kept. */
  maxNodes: number;
  /** Most characters of message text kept (about 2 bytes each). */
  maxChars: number;
}

/** About 32 long conversations' worth; a few tens of MB at most. */
export const DEFAULT_ANALYZER_LIMITS: PromptAnalyzerLimits = { maxNodes: 20_000, maxChars: 16 * 1024 * 1024 };

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

  /** Same result as `analyzePrompt(body, opts)`. */
  analyze(body: { messages: unknown[]; model?: unknown }): PromptAnalysis {
    const model = requestModel(body, this.opts.modelId);
    const parts = canonicalParts(body.messages);
    let level = this.roots.get(model) ?? new Map<string, MemoNode>();
    this.roots.set(model, level);
    const now = ++this.tick;
    let known: MemoNode | undefined;
    let i = 0;
    for (; i < parts.length; i++) {
      const node: MemoNode | undefined = level.get(parts[i]!);
      if (!node) break;
      node.lastUsed = now;
      known = node;
      level = node.children;
    }
    const state = known ? known.state.fork() : PromptState.start(model, this.opts.wordsPerBlock);
    for (; i < parts.length; i++) {
      const text = parts[i]!;
      state.add(text);
      const node: MemoNode = { state: state.fork(), children: new Map(), parent: level, text, lastUsed: now };
      level.set(text, node);
      level = node.children;
      this.nodes++;
      this.chars += text.length;
    }
    if (this.nodes > this.limits.maxNodes || this.chars > this.limits.maxChars) this.prune();
    return state.finish(model, this.opts.bigThresholdWords);
  }

  /** Memo size, for tests and logs. */
  size(): { nodes: number; chars: number } {
    return { nodes: this.nodes, chars: this.chars };
  }

  /**
   * Drop least recently used nodes (with what follows them) until three quarters of each limit are left. A node
   * is never used later than its parent (a lookup walks from the root), so this drops conversations' tails first.
   */
  private prune(): void {
    const all: MemoNode[] = [];
    const collect = (level: Map<string, MemoNode>) => {
      for (const node of level.values()) {
        all.push(node);
        collect(node.children);
      }
    };
    for (const level of this.roots.values()) collect(level);
    all.sort((a, b) => a.lastUsed - b.lastUsed);
    const nodeTarget = Math.floor(this.limits.maxNodes * 0.75);
    const charTarget = Math.floor(this.limits.maxChars * 0.75);
    for (const node of all) {
      if (this.nodes <= nodeTarget && this.chars <= charTarget) break;
      if (node.parent.get(node.text) === node) this.drop(node);
    }
  }

  private drop(node: MemoNode): void {
    node.parent.delete(node.text);
    this.nodes--;
    this.chars -= node.text.length;
    for (const child of node.children.values()) this.drop(child);
  }
}
