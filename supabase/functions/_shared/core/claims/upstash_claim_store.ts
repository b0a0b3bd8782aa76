/**
 * The shared tier: claims in Upstash Redis, so that other instances and cold starts see them.
 *
 * A claim sets the key to this delivery's own token if it is absent, and returns what held it.
 * Once the database has the event, the claim is confirmed right after the response
 * (`waitUntil`): its value becomes `d:<event time>` (only if it still holds what this instance
 * saw). A later delivery that finds
 *
 * - `d:<t>` and is a copy of the event at t ({@link isCopyOfHeld}) is answered "duplicate";
 * - another delivery's token (in flight) waits briefly for that claim to be confirmed, then
 *   decides as above; a claim still unconfirmed after the wait (its instance may have died), or
 *   a confirmation for an event this one is not a copy of, sends the delivery on to the database,
 *   which applies each change exactly once. A claim is therefore never a reason to drop an event.
 *
 * Events with a subject (one person in one group) also keep, per subject, the latest event time
 * of each action claimed, so that a real rejoin is never taken for a copy of the join before the
 * leave. Claims and subject times of one webhook are one script call: one round trip per webhook
 * before the response, plus polls only while another instance's claim is in flight.
 */
import type { Redis } from "@upstash/redis";
import { createUpstashClient } from "../upstash_client.ts";
import { isCopyOfHeld } from "../copy_window.ts";
import {
  type ClaimRequest,
  type ClaimResult,
  type ClaimStore,
  ClaimStoreUnavailableError,
} from "./claim_store.ts";

/**
 * For each event i: KEYS[2i-1] is its claim key, KEYS[2i] its subject key; ARGV[1] is the TTL,
 * ARGV[3i-1], ARGV[3i], ARGV[3i+1] its token, event time and action ('' without a subject).
 * Returns per event what held the claim (false when it was free and is now ours) and the subject's
 * action times as they were before this event.
 */
const CLAIM_SCRIPT = `local ttl = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local key, subject = KEYS[2 * i - 1], KEYS[2 * i]
  local token, at, action = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  local held = redis.call('GET', key)
  if not held then redis.call('SET', key, token, 'PX', ttl) end
  local times = {}
  if action ~= '' then
    times = redis.call('HGETALL', subject)
    local known = redis.call('HGET', subject, action)
    if (not known) or tonumber(known) < tonumber(at) then redis.call('HSET', subject, action, at) end
    redis.call('PEXPIRE', subject, ttl)
  end
  out[i] = {held or false, times}
end
return out`;

/** Sets KEYS[i] to ARGV[2i] when it still holds ARGV[2i-1] (compare-and-set), keeping its TTL. */
const CONFIRM_SCRIPT = `for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[2 * i - 1] then
    redis.call('SET', key, ARGV[2 * i], 'KEEPTTL')
  end
end
return #KEYS`;

/** Bound on what is remembered of claims awaiting confirm or release; a guard, not a cache. */
const MAX_SEEN = 10_000;

/** Polls sent right after the previous answer once another instance's confirmation is due. */
const FAST_POLLS = 4;

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
  /** How long a copy waits for another instance's claim to be confirmed; default 400 ms. */
  inFlightWaitMs?: number;
}

/** What a pending claim found, kept until the database decided. */
interface Pending {
  /** The request's position in the claim call. */
  index: number;
  request: ClaimRequest;
  held: string;
  times?: Record<string, number>;
}

/** Claims in Upstash Redis through `@upstash/redis`. */
export class UpstashClaimStore implements ClaimStore {
  readonly name = "redis";
  readonly #redis: Redis;
  readonly #ttlMs: number;
  readonly #prefix: string;
  readonly #copyWindowMs: number;
  readonly #inFlightWaitMs: number;
  readonly #instance = crypto.randomUUID().slice(0, 8);
  #counter = 0;
  /** What each key held when this instance last claimed or passed it: the value to replace. */
  readonly #seen = new Map<string, string>();
  readonly #confirming = new Set<Promise<void>>();
  /** When this instance claimed each key it still has to confirm: how long applying takes. */
  readonly #claimedAt = new Map<string, number>();
  /** Moving average of claim → confirm on this instance, in ms: when to look at others' claims. */
  #applyMs = 10;
  /** Moving average of one Redis round trip, in ms. */
  #rttMs = 2;
  /** Copies that waited for another instance's claim, and how many of them it confirmed. */
  readonly waits = { waited: 0, confirmedInTime: 0 };

  constructor(options: UpstashClaimStoreOptions) {
    this.#ttlMs = options.ttlMs;
    this.#prefix = `${options.keyPrefix}:`;
    this.#copyWindowMs = options.copyWindowMs ?? 1000;
    this.#inFlightWaitMs = options.inFlightWaitMs ?? 400;
    this.#redis = createUpstashClient(options.url, options.token, options.timeoutMs);
  }

  async claim(requests: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    if (requests.length === 0) return [];
    const keys: string[] = [];
    const args: string[] = [String(this.#ttlMs)];
    const tokens: string[] = [];
    const claimedAt = Date.now();
    for (const request of requests) {
      // The claim's time rides in its token: a copy that finds it knows when to look for the
      // confirmation (a hint only; clocks of other instances are never trusted for a decision).
      const token = `p:${this.#instance}:${++this.#counter}:${claimedAt}`;
      tokens.push(token);
      keys.push(this.#prefix + request.key, this.#prefix + "s:" + (request.subject ?? ""));
      args.push(
        token,
        String(request.at),
        request.subject === undefined ? "" : request.action ?? "",
      );
    }
    let replies: unknown[];
    try {
      // EVAL, not EVALSHA: one round trip always (Redis caches the compiled script itself).
      const sent = performance.now();
      replies = await this.#redis.eval<string[], unknown[]>(CLAIM_SCRIPT, keys, args);
      this.#observeRoundTrip(performance.now() - sent);
    } catch (error) {
      throw new ClaimStoreUnavailableError(this.name, { cause: withoutCommand(error) });
    }
    if (!Array.isArray(replies) || replies.length !== requests.length) {
      throw new ClaimStoreUnavailableError(this.name, { cause: new Error("unexpected reply") });
    }
    if (this.#seen.size >= MAX_SEEN) {
      this.#seen.clear();
      this.#claimedAt.clear();
    }
    const results: ClaimResult[] = [];
    const inFlight: Pending[] = [];
    requests.forEach((request, n) => {
      const [held, flat] = replies[n] as [string | null, string[] | null];
      if (held === null || held === undefined) {
        this.#seen.set(request.key, tokens[n]);
        this.#claimedAt.set(request.key, Date.now());
        results.push("claimed");
        return;
      }
      const times = request.subject === undefined ? undefined : pairs(flat ?? []);
      const pending: Pending = { index: n, request, held: String(held), times };
      const decided = this.#decide(pending);
      if (decided === "wait") inFlight.push(pending);
      results.push(decided === "wait" ? "in-flight" : decided);
    });
    if (inFlight.length > 0) await this.#waitForConfirmations(inFlight, results);
    return results;
  }

  confirm(claims: readonly ClaimRequest[]): Promise<void> {
    const keys: string[] = [];
    const args: string[] = [];
    const now = Date.now();
    for (const { key, at } of claims) {
      const expected = this.#seen.get(key);
      if (expected === undefined) continue;
      this.#seen.delete(key);
      const claimedAt = this.#claimedAt.get(key);
      if (claimedAt !== undefined) {
        this.#claimedAt.delete(key);
        this.#applyMs += ((now - claimedAt) - this.#applyMs) / 8;
      }
      keys.push(this.#prefix + key);
      args.push(expected, `d:${at}`);
    }
    if (keys.length === 0) return Promise.resolve();
    const sending = this.#redis.eval<string[], number>(CONFIRM_SCRIPT, keys, args).then(
      () => {},
      () => {}, // A lost confirmation is harmless: later copies of these events ask the database.
    );
    this.#confirming.add(sending);
    sending.finally(() => this.#confirming.delete(sending));
    return sending;
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
    for (const key of keys) {
      this.#seen.delete(key);
      this.#claimedAt.delete(key);
    }
  }

  /** Waits for confirmations still being sent (shutdown, tests). */
  async close(): Promise<void> {
    while (this.#confirming.size > 0) await Promise.all([...this.#confirming]);
  }

  /**
   * In how many ms the confirmation of the earliest of these claims should reach Redis: the
   * claim's round trip, this instance's apply time and half a round trip after the claim's own
   * time (from its token; when unknown, counted from now).
   */
  #dueInMs(pending: readonly Pending[]): number {
    const now = Date.now();
    let due = Number.POSITIVE_INFINITY;
    for (const { held } of pending) {
      const claimedAt = Number(held.split(":")[3]);
      const since = Number.isFinite(claimedAt) ? Math.max(0, now - claimedAt) : 0;
      due = Math.min(due, this.#rttMs * 1.5 + this.#applyMs - since);
    }
    return due;
  }

  #observeRoundTrip(ms: number): void {
    this.#rttMs += (ms - this.#rttMs) / 8;
  }

  /** `held`, `in-flight` (go to the database), or `wait` (another delivery's token). */
  #decide(pending: Pending): "held" | "in-flight" | "wait" {
    const { request, held, times } = pending;
    if (held.startsWith("d:")) {
      const heldAt = Number(held.slice(2));
      if (isCopyOfHeld(heldAt, request.at, this.#copyWindowMs, request.action, times)) {
        return "held";
      }
    } else if (held.startsWith("p:") && !held.startsWith(`p:${this.#instance}:`)) {
      return "wait";
    }
    this.#seen.set(request.key, held);
    return "in-flight";
  }

  /** Polls the keys of in-flight claims until confirmed, released or the wait is over. */
  async #waitForConfirmations(inFlight: Pending[], results: ClaimResult[]): Promise<void> {
    this.waits.waited += inFlight.length;
    const deadline = Date.now() + this.#inFlightWaitMs;
    // The other instance confirms about as long after its claim as this one takes to apply: the
    // first poll is sent to reach Redis half a round trip before that (at once for a claim that is
    // already due), the next few right after each answer, so that a poll reaches Redis within one
    // round trip of the confirmation; after those, at half the apply time (bounded).
    let delay = Math.min(50, Math.max(0, this.#dueInMs(inFlight) - this.#rttMs));
    const slow = Math.min(40, Math.max(2, this.#applyMs / 2));
    let fast = FAST_POLLS;
    let waiting = inFlight;
    while (waiting.length > 0) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)));
      delay = fast-- > 0 ? 0 : slow;
      let values: (string | null)[];
      try {
        const sent = performance.now();
        values = await this.#redis.mget<(string | null)[]>(
          ...waiting.map((p) => this.#prefix + p.request.key),
        );
        this.#observeRoundTrip(performance.now() - sent);
      } catch {
        break; // Unsure: the database decides.
      }
      const still: Pending[] = [];
      waiting.forEach((pending, n) => {
        const value = values[n];
        if (value !== null && value === pending.held) {
          still.push(pending);
          return;
        }
        if (value === null) {
          // Released after a failure: this delivery goes on to the database.
          this.#seen.delete(pending.request.key);
          return;
        }
        pending.held = String(value);
        const decided = this.#decide(pending);
        if (decided === "held") {
          this.waits.confirmedInTime++;
          results[pending.index] = "held";
        } else if (decided === "wait") {
          still.push(pending);
        }
      });
      waiting = still;
    }
    for (const pending of waiting) this.#seen.set(pending.request.key, pending.held);
  }
}

/** Turns HGETALL's flat [field, value, …] reply into numbers per field. */
function pairs(flat: readonly string[]): Record<string, number> {
  const times: Record<string, number> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) times[flat[i]] = Number(flat[i + 1]);
  return times;
}

/** Drops the `command was: [...]` part of client errors: it holds keys, hence phone numbers. */
function withoutCommand(error: unknown): Error {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new Error(message.split(", command was:")[0]);
}
