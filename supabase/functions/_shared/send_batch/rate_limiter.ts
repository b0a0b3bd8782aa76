/**
 * Throughput limit of provider calls (`SEND_RATE_PER_SECOND`): calls are paced evenly inside an
 * instance and, when Upstash is configured, each one also takes a token from a bucket shared by
 * every instance (@upstash/ratelimit). While Upstash cannot be reached the calls take their slots
 * from a fallback shared through the database instead (`database_rate_limiter.ts`), so the
 * instances together still keep to the rate. A 429 pauses the limiter for everyone in the instance.
 */
import { Ratelimit } from "@upstash/ratelimit";
import { createUpstashClient } from "../core/upstash_client.ts";

/** Grants permission for one provider call at a time. */
export interface RateLimiter {
  /** Resolves when one more call may start. */
  acquire(): Promise<void>;
  /** Holds every later call back for `ms` (after a throughput rejection). */
  pause(ms: number): void;
  /** Announces `calls` acquisitions to come (a claimed chunk), so slots can be taken ahead. */
  expect(calls: number): void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Per-instance pacing: call k starts no earlier than k/rate seconds after the first, so no
 * one-second window holds more than `rate` calls.
 */
export class PacingRateLimiter implements RateLimiter {
  readonly #intervalMs: number;
  #next = 0;

  constructor(ratePerSecond: number) {
    this.#intervalMs = 1000 / ratePerSecond;
  }

  async acquire(): Promise<void> {
    const now = performance.now();
    const slot = Math.max(now, this.#next);
    this.#next = slot + this.#intervalMs;
    if (slot > now) await sleep(slot - now);
  }

  pause(ms: number): void {
    this.#next = Math.max(this.#next, performance.now() + ms);
  }

  expect(_calls: number): void {
    // Nothing to take ahead: the pace is this instance's own.
  }
}

/** Settings of {@link UpstashRateLimiter}. */
export interface UpstashRateLimiterOptions {
  url: string;
  token: string;
  prefix: string;
  ratePerSecond: number;
  /** Bound on one Upstash round trip; past it Upstash counts as down (default 1 s: a slow
   * answer is not worth mixing the two buckets for). */
  timeoutMs?: number;
  /** Where calls take their slots while Upstash is down; without it, the instance's pace only. */
  fallback?: RateLimiter;
  /** How long Upstash is left alone after a failure before it is tried again (default 5 s). */
  retryAfterMs?: number;
}

/**
 * The rate shared by every instance: a token bucket in Upstash Redis refilled with a twentieth of
 * the rate every 50 ms (a burst is at most rate/20 calls), in front of the per-instance pacing.
 * An Upstash failure or timeout switches this instance to `fallback` for `retryAfterMs`.
 */
export class UpstashRateLimiter implements RateLimiter {
  readonly #local: PacingRateLimiter;
  readonly #shared: Ratelimit;
  readonly #key: string;
  readonly #fallback?: RateLimiter;
  readonly #retryAfterMs: number;
  #downUntil = 0;

  constructor(options: UpstashRateLimiterOptions) {
    this.#local = new PacingRateLimiter(options.ratePerSecond);
    const perTick = Math.max(1, Math.floor(options.ratePerSecond / 20));
    const tickMs = Math.max(1, Math.round((perTick / options.ratePerSecond) * 1000));
    this.#shared = new Ratelimit({
      redis: createUpstashClient(options.url, options.token, options.timeoutMs ?? 1_000),
      limiter: Ratelimit.tokenBucket(perTick, `${tickMs} ms`, perTick),
      prefix: options.prefix,
      analytics: false,
      ephemeralCache: false,
      // Never let a call through because Upstash is slow: the client's own timeout throws.
      timeout: 0,
    });
    this.#key = "provider";
    this.#fallback = options.fallback;
    this.#retryAfterMs = options.retryAfterMs ?? 5_000;
  }

  async acquire(): Promise<void> {
    if (this.#fallback && performance.now() < this.#downUntil) {
      return await this.#fallback.acquire();
    }
    await this.#local.acquire();
    for (;;) {
      let result: { success: boolean; reset: number };
      try {
        result = await this.#shared.limit(this.#key);
      } catch {
        // Upstash unreachable: the shared fallback, or without one the per-instance pace.
        if (!this.#fallback) return;
        this.#downUntil = performance.now() + this.#retryAfterMs;
        return await this.#fallback.acquire();
      }
      if (result.success) return;
      await sleep(Math.max(5, Math.min(1000, result.reset - Date.now())));
    }
  }

  pause(ms: number): void {
    this.#local.pause(ms);
    this.#fallback?.pause(ms);
  }

  expect(calls: number): void {
    // Only while Upstash is down: the fallback would otherwise take slots nobody uses.
    if (this.#fallback && performance.now() < this.#downUntil) this.#fallback.expect(calls);
  }
}
