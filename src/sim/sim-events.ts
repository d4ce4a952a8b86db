/**
 * What the simulator records for tests and benchmarks: an event log, running totals, and the queue of injected
 * faults. One recorder is shared by every model instance of a simulator.
 */

interface EventBase {
  /** Date.now() when the event happened. */
  at: number;
  /** The model id (llama-swap / router name; the configured id in llama-server mode). */
  model: string;
}

/** A chat that ran to the end (`chat`) or was cut short by the client going away (`chat_aborted`). */
export interface ChatEvent extends EventBase {
  type: 'chat' | 'chat_aborted';
  slot: number;
  /** The request named its slot (`id_slot`); llama-server's `/v1/messages` never is. */
  pinned: boolean;
  cache_n: number;
  prompt_n: number;
  predicted_n: number;
  aborted: boolean;
  /** True when the prefix came from the RAM prompt cache rather than from the slot itself. */
  ram_hit: boolean;
}

/** A slot save or restore; `ok: false` carries the HTTP status that was answered. */
export interface SlotFileEvent extends EventBase {
  type: 'save' | 'restore';
  slot: number;
  filename: string;
  ok: boolean;
  n_tokens: number;
  bytes: number;
  status: number;
}

/** Every kind of event the simulator records. */
export type SimEvent =
  | ChatEvent
  | SlotFileEvent
  | (EventBase & { type: 'erase'; slot: number; n_erased: number })
  | (EventBase & { type: 'load' | 'unload' })
  | (EventBase & { type: 'ram_hit'; slot: number; n_tokens: number })
  /** A RAM-cache load that did not fit the unified KV buffer beside the other slots (the slot is left empty). */
  | (EventBase & { type: 'ram_no_room'; slot: number })
  | (EventBase & { type: 'fault'; action: FaultAction; status: number });

/** Running totals over the event log. */
export interface SimStats {
  prefillTokens: number;
  reusedTokens: number;
  saves: number;
  restores: number;
  bytesWritten: number;
  bytesRead: number;
  loads: number;
}

/** The operations a fault can be injected into. */
export type FaultAction = 'save' | 'restore' | 'chat';

/** The next `times` (default 1) calls of `action` fail with `status` (and `message`) in llama-server's error shape. */
export interface Fault {
  action: FaultAction;
  status: number;
  message?: string;
  times?: number;
}

/** Distributive Omit, so that each member of the event union keeps its own fields. */
export type NewEvent = SimEvent extends infer E ? (E extends SimEvent ? Omit<E, 'at'> : never) : never;

/** Collects events and totals; hands out injected faults. */
export class SimRecorder {
  readonly events: SimEvent[] = [];
  private readonly totals: SimStats = emptyStats();
  private readonly faults: Fault[] = [];

  /** Appends an event (stamped with the current time) and updates the totals. */
  record(event: NewEvent): void {
    const e = { ...event, at: Date.now() } as SimEvent;
    this.events.push(e);
    const t = this.totals;
    switch (e.type) {
      case 'chat':
      case 'chat_aborted':
        t.prefillTokens += e.prompt_n;
        t.reusedTokens += e.cache_n;
        break;
      case 'save':
        if (e.ok) {
          t.saves++;
          t.bytesWritten += e.bytes;
        }
        break;
      case 'restore':
        if (e.ok) {
          t.restores++;
          t.bytesRead += e.bytes;
        }
        break;
      case 'load':
        t.loads++;
        break;
      default:
        break;
    }
  }

  /** A copy of the running totals. */
  stats(): SimStats {
    return { ...this.totals };
  }

  /** Queues a fault for the next matching calls. */
  injectFault(fault: Fault): void {
    if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599) {
      throw new RangeError(`fault status must be 400..599, got ${fault.status}`);
    }
    this.faults.push({ ...fault, times: fault.times ?? 1 });
  }

  /** Consumes one use of the first queued fault for `action`, if any. */
  takeFault(action: FaultAction, model: string): Fault | undefined {
    const i = this.faults.findIndex((f) => f.action === action);
    if (i < 0) return undefined;
    const fault = this.faults[i]!;
    fault.times = (fault.times ?? 1) - 1;
    if (fault.times <= 0) this.faults.splice(i, 1);
    this.record({ type: 'fault', model, action, status: fault.status });
    return fault;
  }
}

function emptyStats(): SimStats {
  return { prefillTokens: 0, reusedTokens: 0, saves: 0, restores: 0, bytesWritten: 0, bytesRead: 0, loads: 0 };
}
