/**
 * When the smart policy lets a slot's unsaved big content be overwritten without saving it. Only content that
 * extends an entry still on disk (its parent) may go: if the conversation comes back, that entry is restored and
 * only the growth is prefilled again. Content with no entry on disk is always saved; losing it costs a whole prefill.
 */
import type { ResaveRent } from './resave-rent.js';
import type { RestoreEconomics } from './restore-economics.js';
import type { SlotContent } from './slot-state.js';

export type SkipReason = 'below SAVE_MIN_NEW_TOKENS' | 'cheaper to prefill';

/** Why unsaved big content may be overwritten without a save; undefined when it must be saved first. */
export type SkipSave = (content: SlotContent) => SkipReason | undefined;

/** The floor: what may go whoever waits, or nobody (idle-time saves, shutdown). */
export interface FloorRules {
  /** SAVE_MIN_NEW_TOKENS: growth below this many tokens is never saved. */
  minNewTokens: number;
  /** Whether the entry `key` is still on disk: a parent that cleanup or lineage removed restores nothing. */
  onDisk: (key: string) => boolean;
}

/** Where a request waits for the save (eviction, model swap): the floor, and the re-save economics. */
export interface EconomicRules extends FloorRules {
  /** Skip while prefilling the growth again would cost less than writing the whole slot now. */
  economics: Pick<RestoreEconomics, 'resaveWorthIt'>;
  /** The growth already given up over the same entry counts as rent paid (see resave-rent.ts). */
  rent: Pick<ResaveRent, 'paidOver'>;
}

/** The content's tokens and those it added to its parent entry, when the parent is on disk and both are known. */
function growthOverParent(
  content: SlotContent,
  onDisk: (key: string) => boolean,
): { tokens: number; unsaved: number } | undefined {
  const { parentKey, parentTokens, nTokens } = content;
  if (parentKey === undefined || parentTokens === undefined || nTokens === undefined || !onDisk(parentKey))
    return undefined;
  return { tokens: nTokens, unsaved: nTokens - parentTokens };
}

/** Every unsaved big content is saved before it is overwritten (the seed, and an operator's "save now"). */
export const NEVER_SKIP: SkipSave = () => undefined;

/** Growth below SAVE_MIN_NEW_TOKENS goes; the rest is saved (nobody waits for the save, so it is always worth it). */
export function skipBelowFloor(rules: FloorRules): SkipSave {
  return (content) => {
    const growth = growthOverParent(content, rules.onDisk);
    return growth && growth.unsaved < rules.minNewTokens ? 'below SAVE_MIN_NEW_TOKENS' : undefined;
  };
}

/** The floor, then growth whose prefill (with the rent already paid over its entry) costs less than the save. */
export function skipWhenCheaperToPrefill(rules: EconomicRules): SkipSave {
  return (content) => {
    const growth = growthOverParent(content, rules.onDisk);
    if (!growth) return undefined;
    if (growth.unsaved < rules.minNewTokens) return 'below SAVE_MIN_NEW_TOKENS';
    const lost = growth.unsaved + rules.rent.paidOver(content.parentKey!);
    return rules.economics.resaveWorthIt(content.model, growth.tokens, lost) ? undefined : 'cheaper to prefill';
  };
}

/** Record what an eviction that skipped its save gave up (the rent towards the next save of that lineage). */
export function noteSkipped(rent: ResaveRent, skipped: { content: SlotContent }): void {
  const { parentKey, parentTokens, nTokens } = skipped.content;
  if (parentKey !== undefined && parentTokens !== undefined && nTokens !== undefined)
    rent.note(parentKey, nTokens - parentTokens);
}

/** A skipped save as the log shows it: the tokens given up, of how many, and why. */
export function skipSummary(skipped: { content: SlotContent; reason: SkipReason }): Record<string, unknown> {
  const { nTokens, parentTokens } = skipped.content;
  const unsaved = nTokens !== undefined && parentTokens !== undefined ? nTokens - parentTokens : undefined;
  return { unsaved_tokens: unsaved, tokens: nTokens, reason: skipped.reason };
}
