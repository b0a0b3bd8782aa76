/**
 * The shared tier: claims in Upstash Redis, so that other instances and cold starts see them.
 *
 * A claim is `SET key <token> NX PX ttl GET`: it takes the key with this delivery's own token, or
 * returns what holds it. Once the database has the event, the claim is confirmed: its value
 * becomes `d:<event time>` (only if it still holds what this instance saw). A later delivery that
 * finds
 *
 * - `d:<t>` with its own event time within the copy window of t is a copy: answered "duplicate";
 * - anything else (a token still in flight, left by an instance that died, or a confirmation for
 *   an event further away in time) goes on to the database, which applies each change exactly
 *   once. A claim is therefore never a reason to drop an event.
 *
 * All claims of one webhook go in one pipeline (one round trip per webhook). Confirmations are
 * queued and ride along with this instance's next pipeline: no extra round trip. Until then, and
 * if the instance stops first, copies on other instances ask the database, which is safe.
 */
import { Redis } from "@upstash/redis";
import { isCopy } from "../copy_window.ts";
import {
  type ClaimRequest,
  type ClaimResult,
  type ClaimStore,
  ClaimStoreUnavailableError,
} from "./claim_store.ts";

/** Sets KEYS[i] to ARGV[2i] when it still holds ARGV[2i-1] (compare-and-set), keeping its TTL. */
const CONFIRM_SCRIPT = `for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[2 * i - 1] then
    redis.call('SET', key, ARGV[2 * i], 'KEEPTTL')
  end
end
return #KEYS`;

/** Most confirmations kept waiting for the next pipeline; older ones are dropped (harmless). */
const MAX_QUEUED = 10_000;

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
  /** Event times closer than this are copies of one event; default 1000 ms. */
  copyWindowMs?: number;
}

/** Claims in Upstash Redis through `@upstash/redis`. */
export class UpstashClaimStore implements ClaimStore {
  readonly name = "redis";
  readonly #redis: Redis;
  readonly #ttlMs: number;
  readonly #prefix: string;
  readonly #copyWindowMs: number;
  readonly #instance = crypto.randomUUID().slice(0, 8);
  #counter = 0;
  /** What each key held when this instance last claimed or passed it: the value to replace. */
  readonly #seen = new Map<string, string>();
  /** Confirmations waiting for the next pipeline: key → [expected value, new value]. */
  #queued = new Map<string, [string, string]>();

  constructor(options: UpstashClaimStoreOptions) {
    this.#ttlMs = options.ttlMs;
    this.#prefix = `${options.keyPrefix}:`;
    this.#copyWindowMs = options.copyWindowMs ?? 1000;
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
    const confirmations = this.#queued;
    this.#queued = new Map();
    if (confirmations.size > 0) this.#addConfirm(pipeline, confirmations);
    const tokens: string[] = [];
    for (const request of requests) {
      const token = `p:${this.#instance}:${++this.#counter}`;
      tokens.push(token);
      pipeline.set(this.#prefix + request.key, token, { nx: true, px: this.#ttlMs, get: true });
    }
    let replies: { error?: string; result?: unknown }[];
    try {
      replies = await pipeline.exec({ keepErrors: true });
    } catch (error) {
      throw new ClaimStoreUnavailableError(this.name, { cause: withoutCommand(error) });
    }
    const offset = confirmations.size > 0 ? 1 : 0;
    if (this.#seen.size >= MAX_QUEUED) this.#seen.clear(); // a guard: every key is confirmed or released
    return requests.map((request, n) => {
      const reply = replies[offset + n];
      if (!reply || reply.error) {
        throw new ClaimStoreUnavailableError(this.name, {
          cause: new Error(reply?.error ?? "missing reply"),
        });
      }
      if (reply.result === null) {
        this.#seen.set(request.key, tokens[n]);
        return "claimed";
      }
      const held = String(reply.result);
      if (held.startsWith("d:") && isCopy(Number(held.slice(2)), request.at, this.#copyWindowMs)) {
        return "held";
      }
      this.#seen.set(request.key, held);
      return "in-flight";
    });
  }

  confirm(claims: readonly ClaimRequest[]): void {
    for (const { key, at } of claims) {
      const expected = this.#seen.get(key);
      if (expected === undefined) continue;
      this.#seen.delete(key);
      if (this.#queued.size >= MAX_QUEUED) this.#queued.clear();
      this.#queued.set(key, [expected, `d:${at}`]);
    }
  }

  /** Deletes the keys this instance claimed itself (others' claims are left alone). */
  async release(keys: readonly string[]): Promise<void> {
    const owned = keys.filter((key) => this.#seen.get(key)?.startsWith(`p:${this.#instance}:`));
    if (owned.length > 0) {
      try {
        await this.#redis.del(...owned.map((key) => this.#prefix + key));
      } catch (error) {
        // Keep what was seen, so that the caller's retry of the release still knows the claims.
        throw new ClaimStoreUnavailableError(this.name, { cause: withoutCommand(error) });
      }
    }
    for (const key of keys) this.#seen.delete(key);
  }

  /** Sends queued confirmations now (shutdown, tests). */
  async close(): Promise<void> {
    const confirmations = this.#queued;
    this.#queued = new Map();
    if (confirmations.size === 0) return;
    const pipeline = this.#redis.pipeline();
    this.#addConfirm(pipeline, confirmations);
    await pipeline.exec().catch(() => {
      // A lost confirmation is harmless: later copies of these events ask the database.
    });
  }

  #addConfirm(
    pipeline: ReturnType<Redis["pipeline"]>,
    confirmations: Map<string, [string, string]>,
  ): void {
    pipeline.eval(
      CONFIRM_SCRIPT,
      [...confirmations.keys()].map((key) => this.#prefix + key),
      [...confirmations.values()].flat(),
    );
  }
}

/** Drops the `command was: [...]` part of client errors: it holds keys, hence phone numbers. */
function withoutCommand(error: unknown): Error {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new Error(message.split(", command was:")[0]);
}
