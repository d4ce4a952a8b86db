/**
 * How many tokens a prompt word makes on a model, for estimates made before the server has counted (what a task will
 * hold in its slot; whether its state may be left to the RAM cache): a generous 2 a word (about 1.3 in English prose,
 * more in code), or the most a big answer of that model has shown, where its text makes more (identifiers, numbers,
 * other scripts: 4 to 5 tokens a word are common).
 */

/** A generous bound on a prompt's tokens per word, its reply included, until answers show more. */
const TOKENS_PER_WORD_BOUND = 2;

export class TokensPerWord {
  private readonly most = new Map<string, number>();

  /** An answer of `model` to a prompt of `words` words held `tokens` tokens (`cache_n` + `prompt_n`). */
  learn(model: string, words: number, tokens: number): void {
    if (words <= 0 || tokens <= 0) return;
    this.most.set(model, Math.max(this.most.get(model) ?? 0, tokens / words));
  }

  /** About how many tokens a prompt of `words` words of `model` makes, on the generous side. */
  estimate(model: string, words: number): number {
    return Math.ceil(words * Math.max(TOKENS_PER_WORD_BOUND, this.most.get(model) ?? 0));
  }
}
