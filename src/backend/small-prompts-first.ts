/**
 * Small prompts first. llama-server takes up every prompt waiting to start in one batch (up to `n_batch` tokens),
 * and a prompt's first token comes only once its whole batch is computed: a small prompt (a title, an
 * autocompletion) that reaches the server with a big one waits for the big one's first batch, hundreds of
 * milliseconds on a GPU and a second on a CPU, where alone it takes a few milliseconds. They reach it together
 * whenever both arrive while the server's loop is busy (a slot save, another prompt's batch). Seen on the real bench
 * (noise): two clients whose answers ended together sent a title and a turn at the same moment, and the title's first
 * token came after the turn's prefill, 250 to 900 ms instead of 30.
 *
 * So a big request lets the small prompts on their way to the same backend start before it is sent: it waits for
 * their first byte. That costs it the small prompt's own batch: whatever else holds up the small prompt (the server's
 * loop busy) would hold it up too. A small prompt is on its way from getting its slot, not from its sending: a save
 * of the slot's content before it (with `-np N`) would otherwise let a big request find nothing on its way and reach
 * the server with it. The big request waits once its slot is ready (restored), so that its restore, a slot action,
 * runs meanwhile; but on a backend that clears idle slots before it enters the launch gate (launch-gate.ts), where
 * the small prompts would otherwise wait behind it. Small prompts that come later do not hold it back. Bounds
 * (HeadStart): a streamed answer's first byte comes with its first token, a non-streamed one's only at its end, so
 * for that one the wait is short.
 */
export class SmallPromptsFirst {
  /** Small prompts on their way and not started yet (no first byte), per backend. */
  private readonly starting = new Map<number, Set<SmallPrompt>>();

  constructor(private readonly headStart: HeadStart = HEAD_START) {}

  /**
   * A small prompt got its slot on `backend`: call the function returned at its first byte, or its end, or when it
   * failed before (idempotent).
   */
  onItsWay(backend: number, streamed: boolean): () => void {
    let started!: () => void;
    const prompt: SmallPrompt = {
      started: new Promise<void>((resolve) => (started = resolve)),
      waitUntil: performance.now() + (streamed ? this.headStart.streamedMs : this.headStart.unstreamedMs),
    };
    const set = this.starting.get(backend) ?? new Set();
    this.starting.set(backend, set);
    set.add(prompt);
    return () => {
      set.delete(prompt);
      started();
    };
  }

  /**
   * Resolves once every small prompt on its way to `backend` now has started, or has had its head start. Resolves
   * with the milliseconds waited (0 when none was on its way).
   */
  async started(backend: number): Promise<number> {
    const pending = [...(this.starting.get(backend) ?? [])];
    if (pending.length === 0) return 0;
    const since = performance.now();
    const headStartLeft = Math.max(...pending.map((p) => p.waitUntil)) - since;
    if (headStartLeft <= 0) return 0;
    let timer: NodeJS.Timeout | undefined;
    const headStartOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, headStartLeft)));
    await Promise.race([Promise.all(pending.map((p) => p.started)), headStartOver]);
    clearTimeout(timer);
    return performance.now() - since;
  }
}

interface SmallPrompt {
  started: Promise<void>;
  /** `performance.now()` past which it holds no big request back. */
  waitUntil: number;
}

/** The longest a big request waits for one small prompt, from when that one got its slot. */
export interface HeadStart {
  /**
   * A streamed answer: its first byte is its first token, and it comes within a small prefill of the moment the
   * server's loop is free; the bound is for a server that does not answer.
   */
  streamedMs: number;
  /**
   * A non-streamed answer: no sign until its end, so about a small prompt's prefill when the server is free (15 to
   * 60 ms to its first byte on the 2-core CPU bench machine, 35 to 90 with a save of its slot before it); held up
   * longer, the small prompt meets the big one's batch as it would without the proxy.
   */
  unstreamedMs: number;
}

export const HEAD_START: HeadStart = { streamedMs: 2000, unstreamedMs: 100 };
