/** The planner's policy inputs under SAVE_POLICY=always (the seed): every restore, every save first. */
import { NEVER_SKIP } from '../../src/slots/save-skip.js';

export const SEED = { restoreWorthIt: () => true, skipSave: NEVER_SKIP } as const;
