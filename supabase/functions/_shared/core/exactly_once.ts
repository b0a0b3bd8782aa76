/**
 * The claim → apply → release lifecycle that gives each real event exactly one effect.
 *
 * 1. Copies of one event (inside the webhook or not) held by the per-instance memory tier are
 *    duplicates.
 * 2. The shared tier (Upstash Redis) is asked next, in one round trip for the whole webhook. Only a
 *    claim confirmed after the database had the event, for an event time within the copy window,
 *    counts as "duplicate"; anything else (a claim in flight, one left by an instance that died)
 *    sends the event on to the database. Errors and timeouts are never read as "duplicate": the
 *    webhook goes on to the database (fail-open), and the tier is skipped for a cool-down while it
 *    is degraded.
 * 3. The database applies the remaining events in one round trip, writing only real changes; it
 *    recognises copies itself too, whatever order they arrive in.
 * 4. When applying fails, every claim taken in steps 1–2 is released, so the sender's retry is
 *    processed, and {@link DatabaseUnavailableError} reaches the caller. When it works, the shared
 *    claims are confirmed.
 */
import type { ClaimStore } from "./claims/claim_store.ts";
import type { MemoryClaimStore } from "./claims/memory_claim_store.ts";
import { dedupKey } from "../membership/dedup_key.ts";
import type { MembershipRepository } from "../membership/repository.ts";
import type { Logger } from "./log.ts";
import type { EventOutcome, MembershipEvent } from "../membership/event.ts";

/** The result of one event of a webhook. */
export interface EventResult {
  event: MembershipEvent;
  outcome: EventOutcome;
  /** The tier that decided: `memory`, `redis` or `database`. */
  decidedBy: "memory" | "redis" | "database";
  /** The identity the database applied the event to (a LID resolved to its phone). */
  participant?: string;
}

/** The state of the shared tier, as shown by the health response. */
export interface SharedTierHealth {
  configured: boolean;
  state: "ok" | "degraded" | "off";
  consecutiveFailures: number;
  lastError?: string;
  lastFailureAt?: string;
  skippedUntil?: string;
}

/** Options of {@link ExactlyOnceProcessor}. */
export interface ExactlyOnceOptions {
  memory: MemoryClaimStore;
  /** The shared claim store (Upstash Redis); undefined when not configured. */
  shared?: ClaimStore;
  repository: MembershipRepository;
  windowMs: number;
  /** After a shared-tier failure, skip the tier for this long (0: ask it every time). */
  sharedCooldownMs: number;
  logger: Logger;
  now?: () => number;
}

/** Runs the tiers for the events of one webhook. */
export class ExactlyOnceProcessor {
  readonly #o: ExactlyOnceOptions;
  readonly #now: () => number;
  #failures = 0;
  #lastError?: string;
  #lastFailureAt?: number;
  #skipUntil = 0;

  constructor(options: ExactlyOnceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Processes the events of one webhook. Throws {@link DatabaseUnavailableError} (after releasing
   * this webhook's claims) when the database could not apply them.
   */
  async process(events: readonly MembershipEvent[]): Promise<EventResult[]> {
    const { memory, shared, repository, windowMs } = this.#o;
    const results = new Array<EventResult | undefined>(events.length);
    const keys = events.map((event) => dedupKey(event, windowMs));

    // 1. The per-instance memory tier. It also answers for copies inside this webhook: the second
    //    delivery of a key within the copy window finds the first one's claim.
    let pending: number[] = [];
    for (let i = 0; i < events.length; i++) {
      if (memory.claimOne(keys[i], events[i].at)) pending.push(i);
      else results[i] = { event: events[i], outcome: "duplicate", decidedBy: "memory" };
    }

    // 2. The shared tier, one round trip for the whole webhook; fail-open on any error.
    let askedShared = false;
    if (pending.length > 0 && shared && this.#now() >= this.#skipUntil) {
      try {
        const claims = await shared.claim(pending.map((i) => ({ key: keys[i], at: events[i].at })));
        this.#sharedSucceeded();
        askedShared = true;
        pending = pending.filter((i, n) => {
          if (claims[n] !== "held") return true;
          // A copy of an event the database has. Not remembered here, so that the memory tier
          // only ever holds what this instance handled itself.
          memory.releaseSync([keys[i]]);
          results[i] = { event: events[i], outcome: "duplicate", decidedBy: "redis" };
          return false;
        });
        // "claimed" (ours to apply) and "in-flight" (claimed elsewhere and not confirmed, maybe by
        // an instance that died, or confirmed for another event) both go on: the database decides.
      } catch (error) {
        this.#sharedFailed(error);
      }
    }

    // 3. The database, one round trip; 4. release every claim if it fails, confirm if it worked.
    if (pending.length === 0) return results as EventResult[];
    let applied;
    try {
      applied = await repository.apply(pending.map((i) => events[i]));
    } catch (error) {
      const claimed = pending.map((i) => keys[i]);
      memory.releaseSync(claimed);
      if (askedShared) await this.#releaseShared(claimed);
      throw error;
    }
    const confirmations = pending.map((i, n) => {
      const { outcome, participant, referenceAt } = applied[n];
      results[i] = { event: events[i], outcome, decidedBy: "database", participant };
      // The caches measure the copy window from the instant the database matched the event to.
      memory.rebase(keys[i], referenceAt);
      return { key: keys[i], at: referenceAt };
    });
    if (askedShared) shared?.confirm(confirmations);
    return results as EventResult[];
  }

  /** Sends queued confirmations (for shutdown and tests). */
  async close(): Promise<void> {
    await this.#o.shared?.close();
  }

  /** The shared tier's state for the health response. */
  sharedHealth(): SharedTierHealth {
    if (!this.#o.shared) return { configured: false, state: "off", consecutiveFailures: 0 };
    const now = this.#now();
    return {
      configured: true,
      state: this.#failures > 0 ? "degraded" : "ok",
      consecutiveFailures: this.#failures,
      lastError: this.#lastError,
      lastFailureAt: this.#lastFailureAt ? new Date(this.#lastFailureAt).toISOString() : undefined,
      skippedUntil: this.#skipUntil > now ? new Date(this.#skipUntil).toISOString() : undefined,
    };
  }

  #sharedSucceeded(): void {
    if (this.#failures > 0) {
      this.#o.logger.info("shared dedup tier recovered", { after_failures: this.#failures });
    }
    this.#failures = 0;
  }

  #sharedFailed(error: unknown): void {
    this.#failures++;
    this.#lastError = describe(error);
    this.#lastFailureAt = this.#now();
    this.#skipUntil = this.#lastFailureAt + this.#o.sharedCooldownMs;
    this.#o.logger.warn("shared dedup tier unavailable; continuing to the database", {
      error: this.#lastError,
      consecutive_failures: this.#failures,
      cooldown_ms: this.#o.sharedCooldownMs,
    });
  }

  async #releaseShared(keys: string[]): Promise<void> {
    if (keys.length === 0 || !this.#o.shared) return;
    // The release matters more than the claim: a claim left behind would answer the sender's
    // retry as a duplicate until it expires. Try a few times before giving up.
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.#o.shared.release(keys);
        return;
      } catch (error) {
        if (attempt === 3) {
          this.#sharedFailed(error);
          this.#o.logger.error("could not release shared claims after a failed apply", {
            claims: keys.length,
            error: describe(error),
          });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
      }
    }
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`.slice(0, 300);
}
