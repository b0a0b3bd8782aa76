/**
 * The instances of one function: requests go to the current instance, and a new one starts when
 * there is none or the current one has retired (its wall clock is half spent, or it was evicted
 * after answering), as the platform starts a fresh worker. Retired instances finish their own
 * work, within their wall clock, and end.
 */
import { EdgeInstance, type EndReason } from "./edge_instance.ts";
import type { EdgeLimits } from "./edge_limits.ts";

/** Counts for tests and logs. */
export interface PoolStats {
  /** Instances started so far. */
  started: number;
  /** Instances running now (serving, or finishing their work). */
  live: number;
  /** Ended instances by reason. */
  ended: Partial<Record<EndReason, number>>;
}

/** Runs one function in instances of its own. */
export class EdgeFunctionPool {
  /** The function's name. */
  readonly name: string;
  readonly #entry: URL;
  readonly #limits: EdgeLimits;
  readonly #log?: (line: string) => void;
  readonly #live = new Set<EdgeInstance>();
  readonly #ended: Partial<Record<EndReason, number>> = {};
  readonly #gone = new Set<() => void>();
  #current: EdgeInstance | undefined;
  #started = 0;
  #closed = false;

  /** Instances are started on demand from `entry` (the function's `index.ts`). */
  constructor(
    options: { name: string; entry: URL; limits: EdgeLimits; log?: (line: string) => void },
  ) {
    this.name = options.name;
    this.#entry = options.entry;
    this.#limits = options.limits;
    this.#log = options.log;
  }

  /** Hands the request to the current instance, starting one when needed. */
  fetch(request: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    if (this.#closed) {
      return Promise.resolve(
        Response.json({ code: "SHUTTING_DOWN", message: "the runner is stopping" }, {
          status: 503,
        }),
      );
    }
    let instance = this.#current;
    if (!instance || !instance.accepting) instance = this.#start();
    return instance.fetch(request, info);
  }

  /** Started, running and ended instances. */
  get stats(): PoolStats {
    return { started: this.#started, live: this.#live.size, ended: { ...this.#ended } };
  }

  /**
   * Takes no new request, lets every instance finish its responses and `waitUntil` work for up
   * to `timeoutMs`, then terminates what is left; resolves with how many were cut.
   */
  async close(timeoutMs: number): Promise<number> {
    this.#closed = true;
    for (const instance of [...this.#live]) instance.retire();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#allGone(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    const left = [...this.#live];
    for (const instance of left) instance.terminate("shutdown");
    return left.length;
  }

  #start(): EdgeInstance {
    const instance: EdgeInstance = new EdgeInstance({
      name: this.name,
      entry: this.#entry,
      limits: this.#limits,
      log: this.#log,
      onRetired: () => {
        if (this.#current === instance) this.#current = undefined;
      },
      onEnded: (reason) => {
        this.#live.delete(instance);
        this.#ended[reason] = (this.#ended[reason] ?? 0) + 1;
        if (this.#live.size === 0) { for (const resolve of this.#gone) resolve(); }
      },
    });
    this.#started++;
    this.#live.add(instance);
    this.#current = instance;
    return instance;
  }

  #allGone(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.#gone.delete(done);
        resolve();
      };
      this.#gone.add(done);
    });
  }
}
