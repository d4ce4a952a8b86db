/**
 * The best disk entry for a prompt on one backend: the prefix index's match above LCP_TH, restricted to files that
 * backend wrote with the same model file, in the save policy's preference, and none for a model whose restores the
 * policy turned off.
 */
import type { Backends } from '../backend/backends.js';
import type { SavePolicy } from '../slots/save-policy.js';
import type { DiskMatch } from '../slots/slot-state.js';
import type { PrefixIndex } from './prefix-index.js';

export type DiskMatcher = (
  backend: number,
  prompt: { model: string; blocks: readonly string[] },
) => DiskMatch | undefined;

export interface DiskMatchDeps {
  index: Pick<PrefixIndex, 'findBest'>;
  backends: Pick<Backends, 'at' | 'indexOf'>;
  policy: Pick<SavePolicy, 'prefer' | 'restoresEnabled'>;
  wordsPerBlock: number;
  lcpTh: number;
}

export function createDiskMatcher(deps: DiskMatchDeps): DiskMatcher {
  return (backend, prompt) => {
    if (!deps.policy.restoresEnabled(prompt.model)) return undefined;
    const current = deps.backends.at(backend).knownFingerprint(prompt.model);
    const best = deps.index.findBest({
      model: prompt.model,
      wpb: deps.wordsPerBlock,
      blocks: prompt.blocks,
      lcpTh: deps.lcpTh,
      prefer: deps.policy.prefer,
      accept: (meta) =>
        // Seed-written metas name no backend: their files were written by the first (then only) backend.
        (meta.backend === undefined ? 0 : deps.backends.indexOf(meta.backend)) === backend &&
        // Never restore a cache into another model file: an entry that says which model wrote it must match.
        (meta.fingerprint === undefined || meta.fingerprint === current),
    });
    return (
      best && {
        key: best.meta.key,
        backend,
        lcp: best.lcp,
        ratio: best.ratio,
        tokens: best.meta.n_tokens,
        blockCount: best.meta.blocks.length,
      }
    );
  };
}
