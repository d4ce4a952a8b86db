/**
 * The generation requests being handled now, counted by model. Behind llama-swap or router mode a request for
 * another model means a swap is coming, which unloads the current model and its slots with it.
 */
export class PendingModels {
  private readonly counts = new Map<string, number>();

  /** A request for `model` arrived; call `leave` with the same model once it is over. */
  enter(model: string): void {
    this.counts.set(model, (this.counts.get(model) ?? 0) + 1);
  }

  leave(model: string): void {
    const left = (this.counts.get(model) ?? 1) - 1;
    if (left > 0) this.counts.set(model, left);
    else this.counts.delete(model);
  }

  /** Whether a request for a model other than `model` is being handled. */
  anyOtherThan(model: string): boolean {
    for (const [other, count] of this.counts) if (other !== model && count > 0) return true;
    return false;
  }
}
