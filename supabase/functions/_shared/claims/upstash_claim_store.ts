/**
 * The shared tier: claims in Upstash Redis, so that other instances and cold starts see them.
 *
 * A claim is `SET key <token> NX PX ttl GET`: it takes the key with this delivery's own token, or
 * returns what holds it. After the database applied the event, the claim is confirmed: its value
 * becomes `d` (only if it still holds our token). So a later copy that finds
 *
 * - `d` is a duplicate, answered without the database;
 * - a token is in flight, or its instance died before confirming: it goes on to the database,
 *   which applies each change exactly once. A claim is therefore never a reason to drop an event.
 *
 * All claims of one webhook go in one pipeline (one round trip). Confirmations are queued and
 * ride along with the next webhook's pipeline, or go alone after {@link CONFIRM_DELAY_MS} when the
 * instance is idle; a lost confirmation only costs a later copy a database round trip.
 */
import { Redis } from "@upstash/redis";
import {
  type ClaimRequest,
  type ClaimResult,
  type ClaimStore,
  ClaimStoreUnavailableError,
} from "./claim_store.ts";

/** How long a confirmation may wait for the next pipeline before it is sent alone. */
export const CONFIRM_DELAY_MS = 25;

/** Sets each key to `d` when it still holds the given token (compare-and-set). */
const CONFIRM_SCRIPT = `for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then redis.call('SET', key, 'd', 'KEEPTTL') end
end
return #KEYS`;

/** Value of a confirmed claim. */
const DONE = "d";

/** Options of {@link UpstashClaimStore}. */
export interface UpstashClaimStoreOptions {
  /** Upstash REST URL (`UPSTASH_REDIS_REST_URL`). */
  url: string;
  /** Upstash REST token (`UPSTASH_REDIS_REST_TOKEN`). */
  token: string;
  /** How long a claim lasts, in milliseconds. */
  ttlMs: number;
  /** Bound on one round trip; past it the tier counts as unavailable. */
  timeoutMs: number;
  /** Prefix of every key. */
  keyPrefix: string;
}

/** Supabase's Edge Runtime global: `waitUntil` keeps the worker alive for background work. */
const edgeRuntime = (globalThis as {
  EdgeRuntime?: { waitUntil?: (promise: Promise<unknown>) => void };
}).EdgeRuntime;

/** Claims in Upstash Redis through `@upstash/redis`. */
export class UpstashClaimStore implements ClaimStore {
  readonly name = "redis";
  readonly #redis: Redis;
  readonly #ttlMs: number;
  readonly #prefix: string;
  readonly #instance = crypto.randomUUID().slice(0, 8);
  #counter = 0;
  /** Our token of each key claimed and not yet confirmed or released. */
  readonly #tokens = new Map<string, string>();
  /** Confirmations waiting for the next pipeline: key → token. */
  #queued = new Map<string, string>();
  #timer?: ReturnType<typeof setTimeout>;
  #flushing?: Promise<void>;

  constructor(options: UpstashClaimStoreOptions) {
    this.#ttlMs = options.ttlMs;
    this.#prefix = `${options.keyPrefix}:`;
    this.#redis = new Redis({
      url: options.url,
      token: options.token,
      // A fresh signal per request. A shared AbortSignal would make the client answer an aborted
      // request with a fake `{ result: "Aborted" }` instead of throwing.
      signal: () => AbortSignal.timeout(options.timeoutMs),
      retry: { retries: 0 },
      automaticDeserialization: false,
      enableTelemetry: false,
    });
  }

  async claim(requests: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    if (requests.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    const confirmations = this.#takeQueued();
    if (confirmations.size > 0) this.#addConfirm(pipeline, confirmations);
    const tokens: string[] = [];
    for (const request of requests) {
      const token = `p:${this.#instance}:${++this.#counter}`;
      tokens.push(token);
      pipeline.set(this.#prefix + request.key, token, { nx: true, px: this.#ttlMs, get: true });
      if (request.frees?.length) pipeline.del(...request.frees.map((key) => this.#prefix + key));
    }
    let replies: { error?: string; result?: unknown }[];
    try {
      replies = await pipeline.exec({ keepErrors: true });
    } catch (error) {
      throw new ClaimStoreUnavailableError(this.name, { cause: withoutCommand(error) });
    }
    const results: ClaimResult[] = [];
    let i = confirmations.size > 0 ? 1 : 0;
    requests.forEach((request, n) => {
      const reply = replies[i];
      i += request.frees?.length ? 2 : 1;
      if (!reply || reply.error) {
        throw new ClaimStoreUnavailableError(this.name, {
          cause: new Error(reply?.error ?? "missing reply"),
        });
      }
      if (reply.result === null) {
        // Every claim is confirmed or released right after; the bound only guards against leaks.
        if (this.#tokens.size >= 100_000) this.#tokens.clear();
        this.#tokens.set(request.key, tokens[n]);
        results.push("claimed");
      } else if (reply.result === DONE) {
        results.push("held");
      } else {
        results.push("in-flight");
      }
    });
    return results;
  }

  confirm(keys: readonly string[]): void {
    for (const key of keys) {
      const token = this.#tokens.get(key);
      if (token === undefined) continue;
      this.#tokens.delete(key);
      this.#queued.set(key, token);
    }
    if (this.#queued.size > 0 && this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        const flush = this.#flush();
        edgeRuntime?.waitUntil?.(flush);
      }, CONFIRM_DELAY_MS);
    }
  }

  async release(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    for (const key of keys) {
      this.#tokens.delete(key);
      this.#queued.delete(key);
    }
    try {
      await this.#redis.del(...keys.map((key) => this.#prefix + key));
    } catch (error) {
      throw new ClaimStoreUnavailableError(this.name, { cause: withoutCommand(error) });
    }
  }

  async close(): Promise<void> {
    await this.#flush();
    await this.#flushing;
  }

  #takeQueued(): Map<string, string> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const queued = this.#queued;
    this.#queued = new Map();
    return queued;
  }

  #addConfirm(pipeline: ReturnType<Redis["pipeline"]>, confirmations: Map<string, string>): void {
    pipeline.eval(
      CONFIRM_SCRIPT,
      [...confirmations.keys()].map((key) => this.#prefix + key),
      [...confirmations.values()],
    );
  }

  async #flush(): Promise<void> {
    const confirmations = this.#takeQueued();
    if (confirmations.size === 0) return;
    const pipeline = this.#redis.pipeline();
    this.#addConfirm(pipeline, confirmations);
    this.#flushing = pipeline.exec().then(() => {}, () => {
      // A lost confirmation is harmless: later copies of these events ask the database.
    });
    await this.#flushing;
  }
}

/** Drops the `command was: [...]` part of client errors: it holds keys, hence phone numbers. */
function withoutCommand(error: unknown): Error {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new Error(message.split(", command was:")[0]);
}
