/**
 * Whether a rescue's replay (RamRescues) carries the answer's text, per backend and model, from what the replays that
 * carried it brought back from the server's RAM cache.
 *
 * The RAM cache holds the tokens the model generated. Replayed with its text (a last assistant message, or appended
 * to a text prompt), an answer comes back whole when that text tokenizes to those same tokens: the state saved then
 * holds the reply, and the conversation's next turn reuses it. Where it does not (a model whose output is not its
 * tokenizer's own spelling of the text, as the bench's random-weight model's; a template that rewrites replies), the
 * replay prefills the reply again inside the rescue, while a slot or every launch waits for it (on the real bench
 * 35 to 51 tokens, rescues 150 to 300 ms against 90 to 130 without the text). Without the text the state saved holds
 * the prompt alone, and the next turn prefills the reply as part of its own prompt, if the conversation comes back
 * at all. So once a replay with the text brought back less than half of the reply's tokens, the next ones go without
 * it; one in RECHECK_EVERY still carries it, so that a change is seen.
 */

/** Where replays go without the answer's text, one in this many still carries it. */
export const RECHECK_EVERY = 8;
/** A reply this short tells nothing either way (a token or two may differ at its edges). */
const MIN_REPLY_TOKENS = 8;

interface Judged {
  /** The last replay with the text brought back at least half of the reply's tokens. */
  comesBack: boolean;
  /** Replays without the text since it stopped coming back. */
  without: number;
}

/** What a replay that carried the answer's text brought back (tokens). */
export interface ReplayWithText {
  /** The tokens the answer's state held: prompt and reply but its last token (`n_saved`'s count). */
  stateTokens: number;
  /** The reply's generated tokens (`predicted_n`). */
  replyTokens: number;
  /** What the replay reused from the RAM cache (`cache_n`). */
  reused: number;
}

export class ReplayReplies {
  /** By backend, then model. */
  private readonly judged = new Map<number, Map<string, Judged>>();

  /** Whether the next replay of `model` on `backend` carries the answer's text. */
  withReply(backend: number, model: string): boolean {
    const j = this.judged.get(backend)?.get(model);
    if (!j || j.comesBack) return true;
    return ++j.without % RECHECK_EVERY === 0;
  }

  /** The models of `backend` whose replays go without the answer's text (but one in RECHECK_EVERY), for the status. */
  withoutText(backend: number): string[] {
    return [...(this.judged.get(backend) ?? [])].filter(([, j]) => !j.comesBack).map(([model]) => model);
  }

  /**
   * A replay with the answer's text ran: judge from it. Returns the verdict and the reply's tokens it reused when
   * the verdict changed (undefined otherwise, or when the reply was too short to tell).
   */
  note(
    backend: number,
    model: string,
    replay: ReplayWithText,
  ): { comesBack: boolean; reusedOfReply: number } | undefined {
    if (replay.replyTokens < MIN_REPLY_TOKENS) return undefined;
    const promptTokens = replay.stateTokens - (replay.replyTokens - 1);
    const reusedOfReply = replay.reused - promptTokens;
    const comesBack = reusedOfReply >= replay.replyTokens / 2;
    let models = this.judged.get(backend);
    if (!models) this.judged.set(backend, (models = new Map()));
    const before = models.get(model)?.comesBack ?? true;
    models.set(model, { comesBack, without: 0 });
    return comesBack === before ? undefined : { comesBack, reusedOfReply };
  }
}
