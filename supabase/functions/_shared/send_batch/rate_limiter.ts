/**
 * Throughput limit of provider calls (`SEND_RATE_PER_SECOND`): calls are paced evenly inside an
 * instance and, when Upstash is configured, each one also takes a token from a bucket shared by
 * every instance (@upstash/ratelimit). A 429 pauses the limiter for everyone in the instance.
 */
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";

/** Grants permission for one provider call at a time. */
export interface RateLimiter {
  /** Resolves when one more call may start. */
  acquire(): Promise<void>;
  /** Holds every later call back for `ms` (after a throughput rejection). */
  pause(ms: number): void;
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
}

/**
 * The rate shared by every instance: a token bucket in Upstash Redis refilled with a twentieth of
 * the rate every 50 ms (a burst is at most rate/20 calls), in front of the per-instance pacing.
 */
export class UpstashRateLimiter implements RateLimiter {
  readonly #local: PacingRateLimiter;
  readonly #shared: Ratelimit;
  readonly #key: string;

  constructor(options: { url: string; token: string; prefix: string; ratePerSecond: number }) {
    this.#local = new PacingRateLimiter(options.ratePerSecond);
    const perTick = Math.max(1, Math.floor(options.ratePerSecond / 20));
    const tickMs = Math.max(1, Math.round((perTick / options.ratePerSecond) * 1000));
    this.#shared = new Ratelimit({
      redis: new Redis({ url: options.url, token: options.token, enableTelemetry: false }),
      limiter: Ratelimit.tokenBucket(perTick, `${tickMs} ms`, perTick),
      prefix: options.prefix,
      analytics: false,
      ephemeralCache: false,
    });
    this.#key = "provider";
  }

  async acquire(): Promise<void> {
    await this.#local.acquire();
    for (;;) {
      let result: { success: boolean; reset: number };
      try {
        result = await this.#shared.limit(this.#key);
      } catch {
        // Redis unreachable: the per-instance pace still holds.
        return;
      }
      if (result.success) return;
      await sleep(Math.max(5, Math.min(1000, result.reset - Date.now())));
    }
  }

  pause(ms: number): void {
    this.#local.pause(ms);
  }
}
