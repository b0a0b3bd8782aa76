/**
 * The send rate kept in the database, for when Upstash cannot be reached: one row per limit key
 * holds the next free call slot of a timeline every instance shares, and one call of
 * `public.whatsapp_send_rate_take` hands this instance the next slots, spaced evenly, for the
 * chunk of recipients the drain just claimed (one round trip per chunk). A slot is used at its time or never: one that passed while the
 * instance was busy, or fell inside a pause, is dropped, never moved, so slots never bunch up.
 *
 * Bound: slots are 1 / (0.95 × rate) apart on the one timeline ({@link DATABASE_RATE_SHARE}). A
 * call starts after its slot by the time the database's answer took to arrive plus the timer's
 * delay (at most {@link LATE_TOLERANCE_MS}); if those delays differ by at most `spread` between
 * calls, all instances together start at most 0.95 × rate × (W + spread) + 1 calls in any window
 * of W seconds. For W = 1 s that is fewer than rate + 1, so at most the rate, while `spread` is
 * under 52 ms: answers whose transit times differ by less than 32 ms, plus the 20 ms tolerance.
 */
import type { RateLimiter } from "./rate_limiter.ts";

/** The share of the rate the database timeline allows (the rest absorbs late answers). */
export const DATABASE_RATE_SHARE = 0.95;

/** How late after its slot a call may still start; later, the slot is dropped. */
export const LATE_TOLERANCE_MS = 20;

/** What one take of slots answered. */
export interface SlotGrant {
  /** Slots handed out (0 when the timeline is booked further ahead than the horizon). */
  granted: number;
  /** Milliseconds from the database's now to the first slot. */
  firstInMs: number;
  /** When none were granted: milliseconds until a take may succeed. */
  retryInMs: number;
}

/** Where the slots come from: `SendBatchRepository.takeRateSlots` (one round trip). */
export interface RateSlotStore {
  takeRateSlots(
    key: string,
    intervalMs: number,
    want: number,
    horizonMs: number,
  ): Promise<SlotGrant>;
}

/** Settings of {@link DatabaseRateLimiter}. */
export interface DatabaseRateLimiterOptions {
  store: RateSlotStore;
  /** The limit's key (one per provider account). */
  key: string;
  /** `SEND_RATE_PER_SECOND`; the timeline runs at {@link DATABASE_RATE_SHARE} of it. */
  ratePerSecond: number;
  /** Most slots taken per round trip: the drain's claim chunk. */
  slotsPerTake: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A rate limiter whose slots come from a timeline in the database, shared by every instance. */
export class DatabaseRateLimiter implements RateLimiter {
  readonly #store: RateSlotStore;
  readonly #key: string;
  readonly #intervalMs: number;
  readonly #maxTake: number;
  readonly #horizonMs: number;
  /** Slots held by this instance, as `performance.now()` times, earliest first. */
  #slots: number[] = [];
  /** Calls announced by {@link expect} that no slot covers yet. */
  #expected = 0;
  /** Acquirers waiting for the take in flight. */
  #waiting = 0;
  #taking: Promise<void> | undefined;
  #pausedUntil = 0;

  constructor(options: DatabaseRateLimiterOptions) {
    this.#store = options.store;
    this.#key = options.key;
    this.#intervalMs = 1000 / (options.ratePerSecond * DATABASE_RATE_SHARE);
    this.#maxTake = Math.max(1, Math.floor(options.slotsPerTake));
    // Book at most this far ahead, so that a new instance waits little for its first slot.
    this.#horizonMs = Math.max(2000, 4 * this.#maxTake * this.#intervalMs);
  }

  /**
   * A claimed chunk announces its calls: their slots are taken now, in one round trip, and are
   * ready when the calls come. Slots are taken for announced calls only (or for acquirers already
   * waiting), so a drain that ends leaves hardly any slot unused.
   */
  expect(calls: number): void {
    this.#expected = Math.min(this.#expected + calls, 4 * this.#maxTake);
    this.#take().catch(() => {/* the failure shows at the next acquire */});
  }

  /** Resolves at this instance's next slot; throws when the database cannot be reached. */
  async acquire(): Promise<void> {
    for (;;) {
      const now = performance.now();
      if (now < this.#pausedUntil) {
        await sleep(this.#pausedUntil - now);
        continue;
      }
      const floor = now - LATE_TOLERANCE_MS;
      while (this.#slots.length > 0 && this.#slots[0] < floor) this.#slots.shift();
      const at = this.#slots.shift();
      if (at === undefined) {
        this.#waiting++;
        try {
          await this.#take();
        } finally {
          this.#waiting--;
        }
        continue;
      }
      if (at > now) await sleep(at - now);
      // A pause that began meanwhile, or a timer that fired too late, forfeits the slot.
      if (at < this.#pausedUntil || performance.now() - at > LATE_TOLERANCE_MS) continue;
      return;
    }
  }

  /** Holds every later call of this instance back for `ms`; slots inside the pause are dropped. */
  pause(ms: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, performance.now() + ms);
  }

  /** One take at a time; concurrent acquirers wait for the same one. */
  #take(): Promise<void> {
    this.#taking ??= this.#fetch().finally(() => (this.#taking = undefined));
    return this.#taking;
  }

  async #fetch(): Promise<void> {
    for (;;) {
      const want = Math.min(this.#maxTake, Math.max(1, this.#expected, this.#waiting));
      const grant = await this.#store.takeRateSlots(
        this.#key,
        this.#intervalMs,
        want,
        this.#horizonMs,
      );
      // Counted from the answer's arrival: a late answer makes the calls later, never earlier.
      const first = performance.now() + grant.firstInMs;
      if (grant.granted > 0) {
        for (let i = 0; i < grant.granted; i++) this.#slots.push(first + i * this.#intervalMs);
        this.#slots.sort((a, b) => a - b);
        this.#expected = Math.max(0, this.#expected - grant.granted);
        return;
      }
      await sleep(Math.max(this.#intervalMs, grant.retryInMs));
    }
  }
}
