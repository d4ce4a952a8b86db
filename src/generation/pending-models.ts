/**
 * The generation requests being handled now, counted by model. Behind llama-swap or router mode a request for
 * another model may mean a swap is coming, which unloads the current model and its slots with it.
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

  /** The models other than `model` that requests being handled now are for. */
  othersThan(model: string): string[] {
    return [...this.counts.keys()].filter((other) => other !== model);
  }
}
