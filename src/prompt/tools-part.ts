/**
 * Tool definitions in the canonical prompt. A tools-aware chat template renders them into the system part of the
 * prompt (after the system message, before the conversation), and agents' tool lists are long (Claude Code's 24
 * tools are about 16k of its 19k tokens): two requests whose messages agree but whose tools differ share almost no
 * KV, so their keys and blocks must differ too. Requests without tools keep the seed's parts, and so its keys.
 */
import { canonicalParts } from './prompt-analysis.js';

/**
 * The tools as one canonical part: each function tool's name, description and parameters as JSON, one a line.
 * The chat form (`{type: 'function', function: {…}}`) and the Responses form (`{type: 'function', name, …}`) give
 * the same text, so a conversation keeps its key across the two APIs. Other tool types (Responses' `web_search`,
 * `namespace`) are left out, as llama-server's conversion leaves them out of the prompt. Undefined when none.
 */
export function toolsPart(tools: unknown): string | undefined {
  if (!Array.isArray(tools)) return undefined;
  const lines: string[] = [];
  for (const tool of tools) {
    if (typeof tool !== 'object' || tool === null) continue;
    const { type, function: fn } = tool as { type?: unknown; function?: unknown };
    if (type !== undefined && type !== 'function') continue;
    const definition = (typeof fn === 'object' && fn !== null ? fn : tool) as {
      name?: unknown;
      description?: unknown;
      parameters?: unknown;
    };
    lines.push(
      JSON.stringify({ name: definition.name, description: definition.description, parameters: definition.parameters }),
    );
  }
  return lines.length > 0 ? lines.join('\n') : undefined;
}

/** `parts` with the tools part where the template renders it: after a leading system part, else first. */
export function withToolsPart(parts: readonly string[], systemFirst: boolean, tools: unknown): string[] {
  const part = toolsPart(tools);
  if (part === undefined) return [...parts];
  const at = systemFirst && parts.length > 0 ? 1 : 0;
  return [...parts.slice(0, at), part, ...parts.slice(at)];
}

/** The chat messages start with a system (or developer) message whose content is the first canonical part. */
export function startsWithSystemText(messages: unknown[]): boolean {
  const first: unknown = messages[0];
  const role = typeof first === 'object' && first !== null ? (first as { role?: unknown }).role : undefined;
  return (role === 'system' || role === 'developer') && canonicalParts([first]).length === 1;
}
